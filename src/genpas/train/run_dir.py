"""Run directories: the protocol a checkpoint was written under, the lock held while a process trains in one, and
the rule for directories owned by a job (search, experiments, main job)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from genpas.errors import GenpasError
from genpas.train.checkpoint import load_state
from genpas.train.config import RESUMABLE_CHANGES, TrainConfig

# What an epoch means (docs/method.md "Epochs"): 2 = the same optimizer steps for every strategy. Saved in last.pt;
# a checkpoint of another protocol is never resumed (its epochs, compute counts and log columns differ).
PROTOCOL = 2


class RunBusy(GenpasError):
    """Another process holds the lock: it is training there."""


_HELD: dict[str, int] = {}  # lock files this process holds, with their nesting depth (the locks are re-entrant)


def _key(lock_file: Path) -> str:
    return str(Path(lock_file).resolve())


def can_lock() -> bool:
    """Whether advisory file locks exist here (POSIX fcntl); without them no lock is taken."""
    try:
        import fcntl  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def run_lock(directory: Path | None, wait: bool = False):
    """An exclusive lock on DIR/.lock while a process trains there (POSIX; elsewhere no lock is taken)."""
    if directory is None:
        yield
        return
    with exclusive(Path(directory) / ".lock", f"{directory} is in use by another training process; wait for it to "
                                               f"finish or train into another --out", wait):
        yield


@contextmanager
def exclusive(lock_file: Path, busy_message: str, wait: bool = False):
    """Hold an advisory lock on `lock_file` (created if missing): wait for it, or raise RunBusy(busy_message) at
    once. Re-entrant within a process; the lock dies with the process, so a killed run never leaves a stale one."""
    key = _key(lock_file)
    if key in _HELD or not can_lock():
        _HELD[key] = _HELD.get(key, 0) + 1
        try:
            yield
        finally:
            _HELD[key] -= 1
            if not _HELD[key]:
                del _HELD[key]
        return
    import fcntl

    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise RunBusy(busy_message) from None
        except OSError as e:
            raise GenpasError(f"{lock_file}: cannot take a lock ({e.strerror}); keep experiment directories on a "
                              f"file system with working flock (a local disk, NFSv4)") from None
        _HELD[key] = 1
        try:
            yield
        finally:
            del _HELD[key]
            fcntl.flock(fh, fcntl.LOCK_UN)


def held_elsewhere(lock_file: Path) -> bool:
    """Whether another process holds `lock_file` now; reads only (a missing file is held by no one)."""
    if not can_lock() or not Path(lock_file).exists() or _key(lock_file) in _HELD:
        return False
    import fcntl

    with open(lock_file) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


# What genpas writes in a run directory (train, evaluate): what a job may remove to train a run again.
RUN_ENTRIES = frozenset({"config.yaml", "metrics.json", "best.safetensors", "last.pt", "log.csv", "tensorboard",
                         "evaluation.json", "ranks.npz", "continued.json"})


def fresh_or_resumable(cfg: TrainConfig, out_dir: Path, data=None) -> None:
    """Empty a job-owned run directory whose config.yaml differs from `cfg` in an option a resumed run may not change
    (RESUMABLE_CHANGES) or is damaged, whose checkpoint was trained on other data than `data` (a SequenceStore;
    checkpoints that predate the data checks are resumed), or that has no checkpoint to resume. Only a run's own
    files go (its lock file stays, so a process holding it keeps it); a directory holding anything else is refused.
    So a run resumed with other threads, another device or more epochs continues where it stopped."""
    out_dir = Path(out_dir)
    config = out_dir / "config.yaml"
    if not config.exists():
        return

    def fixed(values: dict) -> dict:
        return {k: v for k, v in values.items() if k not in RESUMABLE_CHANGES}

    try:
        same = fixed(TrainConfig.from_run(config).to_dict()) == fixed(cfg.to_dict())
    except GenpasError:  # a run of an earlier version whose options are refused today
        same = False
    trainer = _trainer_state(out_dir / "last.pt")
    if same and trainer is not None and data is not None:
        same = trainer.get("data", data.fingerprint()) == data.fingerprint() and \
            trainer.get("items", data.item_fingerprint()) == data.item_fingerprint()
    if not same or trainer is None:
        clear_run(out_dir)


def _only_a_run(out_dir: Path) -> None:
    """GenpasError unless `out_dir` holds a run's files only (hidden files aside: locks, temporary files); a damaged
    config.yaml among them counts as the run's, and goes with it."""
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in RUN_ENTRIES and not p.name.startswith("."))
    if foreign:
        raise GenpasError(f"{out_dir} holds files that are no run's ({', '.join(foreign[:3])}); give the job another "
                          "--out, or move them away")


def clear_run(out_dir: Path) -> None:
    """Remove a job-owned run's files from `out_dir` (which must hold nothing else), so that it trains from scratch."""
    out_dir = Path(out_dir)
    if not out_dir.exists():
        return
    _only_a_run(out_dir)
    for path in out_dir.iterdir():
        if path.name in RUN_ENTRIES:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _trainer_state(last: Path) -> dict | None:
    """The trainer state of a checkpoint written under the current protocol, else None (none, damaged or older)."""
    if not last.exists():
        return None
    try:
        trainer = load_state(last)["trainer"]
    except GenpasError:  # a damaged checkpoint: the directory is retrained
        return None
    return trainer if trainer.get("protocol") == PROTOCOL else None


def same_data(run: Path, recorded: str | None, fingerprint: str, data: str) -> None:
    """Refuse to evaluate run `run` on data other than it was trained on: `fingerprint` (SequenceStore.fingerprint of
    the data at hand, read from `data`) against `recorded`, the one its metrics.json named (None: unfinished, or
    finished before runs named their data), else the one its last.pt recorded. Runs that recorded none pass."""
    if recorded is None:
        recorded = (_trainer_state(Path(run) / "last.pt") or {}).get("data")
    if not trained_on({"data_sha256": recorded}, fingerprint):
        raise GenpasError(f"{run}: its data, {data} (the run's config.yaml), has changed since the run was trained "
                          "(its events, its ids or their order), so its figures would be of other users and targets; "
                          "put back the data it was trained on, or train a new run on this data")


def trained_on(result: dict, fingerprint: str) -> bool:
    """Whether a finished run's metrics.json (or its record in a run store's ledger) were trained on the data of
    `fingerprint` (SequenceStore.fingerprint). Results written before runs recorded their data count as trained on
    it: they are reused as they always were."""
    return result.get("data_sha256") in (None, fingerprint)


def locate_data(run: Path, cfg: TrainConfig) -> TrainConfig:
    """`cfg` of run directory `run`, with a relative data path that does not exist from here (the run was trained
    from another directory) replaced by the absolute path it was trained on, as its metrics.json or, for an
    unfinished run, its last.pt recorded it. The data's fingerprint is still checked against the run's afterwards."""
    from genpas.data.builtin import BUILTIN

    if cfg.data in BUILTIN or Path(cfg.data).is_absolute() or Path(cfg.data).exists():
        return cfg
    trained = None
    if (Path(run) / "metrics.json").is_file():
        try:
            trained = json.loads((Path(run) / "metrics.json").read_text()).get("data_path")
        except (OSError, ValueError, AttributeError):
            trained = None
    elif (Path(run) / "last.pt").is_file():
        trained = (_trainer_state(Path(run) / "last.pt") or {}).get("data_path")
    if isinstance(trained, str) and Path(trained).exists():
        cfg.data = trained
    return cfg


def repair_log(path: Path, last_row: dict | None) -> None:
    """After an interruption between the checkpoint and the log write, a run's log.csv (`path`) lacks the checkpoint's
    epoch (`last_row`): put it back, so that the log holds every epoch once, up to the one resumed from."""
    if last_row is None:
        return
    try:
        rows = list(csv.DictReader(open(path, newline=""))) if path.exists() else []
        rows = [r for r in rows if int(r["epoch"]) < int(last_row["epoch"])]
    except (KeyError, TypeError, ValueError, csv.Error):  # UnicodeDecodeError is a ValueError
        raise GenpasError(f"{path}: damaged (a row without a whole-number epoch); restore it, or delete the run "
                          "directory to train from scratch") from None
    tmp = path.with_name(".log.csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(last_row))
        w.writeheader()
        w.writerows(rows)
        w.writerow(last_row)
    os.replace(tmp, path)
