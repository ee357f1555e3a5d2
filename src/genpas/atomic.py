"""Atomic file writes: nothing the user had is overwritten half-way.

Every output goes to a temporary name in the same directory and is renamed into place only once complete, so a
crash or a kill mid-write leaves the previous file intact and never a truncated one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:  # a refusal about the temporary file is named by the path the caller asked for
        if exc.filename is not None and exc.filename not in (str(tmp), tmp):
            raise  # about another file (an input read while writing): its own name says it
        reason = exc.strerror or str(exc).replace(f": {tmp}", "").replace(str(tmp), str(path))
        raise OSError(exc.errno, f"cannot be written ({reason})", str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path | str, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
