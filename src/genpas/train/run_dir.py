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


@contextmanager
def run_lock(directory: Path | None):
    """An exclusive lock on DIR/.lock while a process trains there (POSIX; elsewhere no lock is taken)."""
    if directory is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks through fcntl
        yield
        return
    with open(Path(directory) / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise GenpasError(f"{directory} is in use by another training process; wait for it to finish or train "
                              f"into another --out") from None
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
