"""Run directories: the protocol a checkpoint was written under, the lock held while a process trains in one, and
the rule for directories owned by a job (search, experiments, main job)."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from genpas.errors import GenpasError
from genpas.train.checkpoint import load_state
from genpas.train.config import TrainConfig

# What an epoch means (docs/method.md "Epochs"): 2 = the same optimizer steps for every strategy. Saved in last.pt;
# a checkpoint of another protocol is never resumed (its epochs, compute counts and log columns differ).
PROTOCOL = 2


class RunBusy(GenpasError):
    """Another process holds the lock: it is training there."""


@contextmanager
def run_lock(directory: Path | None):
    """An exclusive lock on DIR/.lock while a process trains there (POSIX; elsewhere no lock is taken)."""
    if directory is None:
        yield
        return
    with exclusive(Path(directory) / ".lock", f"{directory} is in use by another training process; wait for it to "
                                               f"finish or train into another --out"):
        yield


@contextmanager
def exclusive(lock_file: Path, busy_message: str):
    """Hold an advisory lock on `lock_file` (created if missing) or raise RunBusy(busy_message) at once. The lock
    dies with the process, so a killed run never leaves a stale one."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks through fcntl
        yield
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RunBusy(busy_message) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def fresh_or_resumable(cfg: TrainConfig, out_dir: Path) -> None:
    """Drop a job-owned run directory whose config.yaml differs from `cfg`, or that has no checkpoint to resume."""
    out_dir = Path(out_dir)
    config = out_dir / "config.yaml"
    if config.exists():
        try:
            same = TrainConfig.from_run(config).to_dict() == cfg.to_dict()
        except GenpasError:
            same = False
        if not same or not (out_dir / "last.pt").exists() or not _current_protocol(out_dir / "last.pt"):
            shutil.rmtree(out_dir)


def _current_protocol(last: Path) -> bool:
    try:
        return load_state(last).get("trainer", {}).get("protocol") == PROTOCOL
    except GenpasError:  # a damaged checkpoint: the directory is retrained
        return False
