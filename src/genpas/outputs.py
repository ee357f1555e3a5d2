"""One policy for every path a command writes, checked before any work starts.

A file output (`--out x.jsonl`) may not be a directory, a device or anything else that is not a regular file, may not
be one of the command's inputs, and is not replaced when it exists unless the user says so (`--overwrite`). A
directory output may not be an existing file. Parent directories are created, and must be writable. Each refusal is
one GenpasError naming the option, the path and what to do; the files themselves are then written atomically
(atomic.py), so a failure half-way leaves the previous file intact.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from genpas.errors import GenpasError


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _writable_parent(path: Path, option: str, create: bool = True) -> None:
    parent = path.parent
    existing = parent
    while not existing.exists():  # the nearest existing ancestor decides whether the parents can be created
        existing = existing.parent
    if not existing.is_dir():
        raise GenpasError(f"{option} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise GenpasError(f"{option} {path}: {existing} is not writable")
    if create:
        _create(parent, path, option)


def _create(directory: Path, path: Path, option: str) -> None:
    """mkdir -p, or one GenpasError saying why not (a read-only or virtual file system, a full disk)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenpasError(f"{option} {path}: cannot create {directory} ({exc.strerror or exc})") from None


def output_file(path: Path | str, inputs: Iterable[Path | str | None] = (), overwrite: bool = False,
                option: str = "--out", create: bool = False) -> Path:
    """Check a file output (see the module docstring); returns it as a Path. Its parent directories are created by
    the atomic write (atomic.py), once the work has succeeded; create=True creates them now."""
    path = Path(path).expanduser()
    for source in inputs:
        if source is not None and _same(path, Path(source).expanduser()):
            raise GenpasError(f"{option} {path} is an input of this command; write the output to another file")
    if path.exists() or path.is_symlink():
        if path.is_dir():
            raise GenpasError(f"{option} {path} is a directory; give a file path")
        if not path.is_file():
            raise GenpasError(f"{option} {path} exists and is not a regular file; give a file path")
        if not overwrite:
            raise GenpasError(f"{option} {path} already exists; pass --overwrite to replace it")
    _writable_parent(path, option, create)
    return path


def output_dir(path: Path | str, inputs: Iterable[Path | str | None] = (), option: str = "--out",
               create: bool = True) -> Path:
    """Check a directory output: never an existing file, never an input; parents created (create=False: whether it
    can be created is probed and nothing is left behind; its writer creates it once the work succeeds)."""
    path = Path(path).expanduser()
    for source in inputs:
        if source is not None and _same(path, Path(source).expanduser()):
            raise GenpasError(f"{option} {path} is an input of this command; give an output directory")
    if path.exists() and not path.is_dir():
        raise GenpasError(f"{option} {path} is a file, not a directory; give a directory path")
    _writable_parent(path, option, create)
    if not create and not path.exists():  # can it be created? (probe, then remove every directory the probe made)
        top = next(d for d in [*path.parents][::-1] + [path] if not d.exists())
        try:
            _create(path.parent, path, option)
            _create(path, path, option)
        finally:
            if path.is_dir() and not any(path.iterdir()):
                path.rmdir()
            remove_empty_parents(path, top)
    elif not path.exists():  # can it be created? (probe, then leave the file system as it was)
        _create(path, path, option)
        path.rmdir()
    return path


def remove_empty_parents(path: Path, top: Path) -> None:
    """Remove the parents of `path` up to and including `top` (which holds them), bottom-up, while they are empty:
    what a failed command created goes, and never what another process has put there meanwhile."""
    for parent in [*Path(path).parents]:
        if not parent.is_relative_to(top):
            return
        try:
            parent.rmdir()
        except OSError:  # not empty (or gone): leave it and everything above it
            return


def data_inputs(data: str) -> list[Path]:
    """The input files a --data value names (none for a built-in dataset)."""
    from genpas.data.builtin import BUILTIN

    return [] if data in BUILTIN else [Path(data)]
