"""Reading a run's training log (RUN/log.csv, one row per epoch): its validation curve, and how far it has come."""

from __future__ import annotations

from pathlib import Path

from genpas.errors import GenpasError
from genpas.train.config import TrainConfig


def _log_rows(log_csv: Path, columns: tuple[str, ...], kinds: tuple) -> list[list]:
    """The given columns of every row of a run's log.csv that has them all, converted by `kinds`."""
    import csv

    if not Path(log_csv).exists():
        return []
    try:
        with open(log_csv, newline="") as fh:
            return [[kind(row[c]) for c, kind in zip(columns, kinds)] for row in csv.DictReader(fh)
                    if all(row.get(c) not in (None, "") for c in columns)]
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise GenpasError(f"{log_csv}: damaged training log ({exc}); delete the run's directory to train it "
                          "again") from None


def validation_curve(log_csv: Path) -> list[list[float]]:
    """[[optimizer steps, valid NDCG@10], ...] after each epoch of a run, from its log.csv (empty for popularity)."""
    return _log_rows(log_csv, ("optimizer_steps", "valid_ndcg@10"), (int, float))


def run_progress(log_csv: Path, cfg: TrainConfig) -> dict:
    """How far a run of `cfg` has come, from its log.csv: epochs done, the best validation NDCG@10 so far and its
    epoch, the most epochs left before patience or the epoch cap ends it (a time budget may end it sooner), and the
    mean seconds of its last five epochs. The last four are None before the first epoch."""
    curve = validation_curve(log_csv)
    if not curve:
        return {"epochs": 0, "best_valid_ndcg@10": None, "best_epoch": None, "epochs_left": None,
                "epoch_seconds": None}
    scores = [score for _, score in curve]
    best_epoch = scores.index(max(scores))  # the first of equal bests: a later tie is no gain
    recent = [seconds for (seconds,) in _log_rows(log_csv, ("epoch_seconds",), (float,))][-5:]
    return {"epochs": len(curve), "best_valid_ndcg@10": scores[best_epoch], "best_epoch": best_epoch,
            "epochs_left": max(0, min(cfg.epochs - 1, best_epoch + cfg.patience) - (len(curve) - 1)),
            "epoch_seconds": sum(recent) / len(recent) if recent else None}
