"""Stopping hopeless trainings of a search early (`genpas search --prune`).

The search picks the setting of the best validation NDCG@10, so a training that cannot reach the best finished one
is compute spent on nothing. After every epoch e of a run bounded by E epochs with patience W, once e >= W and while
neither patience nor the epoch cap ends the run, its reach is estimated from its last W validation scores: a least
squares line through them gives the level L at epoch e, the slope m and the residual standard deviation s, and

    reach = (1 + M) * ( max(best so far, L + F * max(m, 0) * R)  +  sqrt(2 ln(R + 1)) * s ),   R = E - 1 - e,

that is: the trend carried on F times as steep until the last epoch, plus the noise allowance of the best of R more
noisy validations (about sqrt(2 ln R) standard deviations above the level), plus a relative margin M. The run is
stopped when its reach is below the best validation NDCG@10 of the search's finished trainings (the leader).
Validation curves flatten as training goes on, so the recent trend already overstates what is to come; but they
are noisy, and the best of a noisy curve keeps creeping up, which is what the noise term is for. F = 2, M = 5 %.

How safe that is was measured, not assumed (bench/pruning_backtest.py, over every committed training log): a rule is
unsafe where a run's reach at some epoch fell below its own final best, as a leader in between would have stopped
it wrongly. This rule underestimated none of the 108 runs; without the margin it underestimated 2, with 2 % one, and
the first rule tried (the best score's gain over the window carried on twice as fast, no noise term) 5, among them
the ML-1M search's leader, whose best rose from 0.1798 to 0.1862 after 25 nearly flat epochs. F and M were chosen on
those logs: evidence, not a guarantee. The rule never stops the leader, but could stop a run that would overtake it.

A stopped ("pruned") run is not finished: its checkpoint stays, no metrics.json is written and the run store's
ledger does not hold it, so an experiment, or a search without --prune, resumes it where it stopped. Its record,
with the metrics of its best epoch so far and the facts of the verdict, goes to DIR/pruned.jsonl, where searches
that prune with the same rule read it back (as long as the run has not been trained further since).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from genpas.errors import GenpasError
from genpas.train.checkpoint import load_state
from genpas.train.loss import COMPUTE_KEYS

FACTOR, MARGIN = 2.0, 0.05


def reach(scores: list[float], epochs: int, window: int, factor: float = FACTOR, margin: float = MARGIN) -> float | None:
    """The most a run with validation NDCG@10 `scores` (one per epoch so far) is expected to reach by its last epoch
    (module docstring), or None where the rule does not apply: no full window yet (or one under 3 epochs), the epoch
    cap ends the run now, or no gain over the last `window` epochs (patience ends it now, finished)."""
    e = len(scores) - 1
    if window < 3 or e < window or e + 1 >= epochs:
        return None
    best = max(scores)
    if best <= max(scores[: e - window + 1]):
        return None
    x, y = np.arange(window, dtype=np.float64), np.asarray(scores[-window:], dtype=np.float64)
    slope, intercept = np.polyfit(x, y, 1)
    level = slope * (window - 1) + intercept
    noise = float(np.std(y - (slope * x + intercept), ddof=2))
    left = epochs - 1 - e
    trend = max(best, level + factor * max(slope, 0.0) * left)
    return float((1 + margin) * (trend + math.sqrt(2 * math.log(left + 1)) * noise))


class Pruned(Exception):
    """Raised after an epoch by the run store's hook: the run is hopeless (`verdict`: Prune.verdict's facts)."""

    def __init__(self, verdict: dict):
        self.verdict = verdict
        super().__init__(f"pruned after epoch {verdict['epoch']}")


@dataclass(frozen=True)
class Prune:
    """The rule (module docstring) against `leader`, a callable giving (name, best validation NDCG@10) of the
    search's best finished training, or None while none has finished."""

    leader: Callable[[], tuple[str, float] | None]
    factor: float = FACTOR
    margin: float = MARGIN

    def __post_init__(self):
        if not self.factor >= 0:  # nan too
            raise GenpasError(f"--prune-factor must be >= 0, got {self.factor}")
        if not self.margin >= 0:
            raise GenpasError(f"--prune-margin must be >= 0, got {self.margin}")

    def verdict(self, scores: list[float], epochs: int, patience: int) -> dict | None:
        """The facts of stopping a run with validation NDCG@10 `scores` (one per epoch so far) now, or None to go
        on."""
        most = reach(scores, epochs, patience, self.factor, self.margin)
        if most is None:
            return None
        leader = self.leader()
        if leader is None or most >= leader[1]:
            return None
        return {"epoch": len(scores) - 1, "best": max(scores), "window": patience, "epochs": epochs,
                "factor": self.factor, "margin": self.margin, "reach": most, "leader": leader[0],
                "leader_valid_ndcg@10": leader[1]}

    def accepts(self, record: dict, epochs_logged: int) -> bool:
        """Whether a pruned record (DIR/pruned.jsonl) stands for this rule: the same factor and margin, the run not
        trained past it since, and its reach still below this search's leader (another search of the same directory
        may have stopped it against a leader this one does not train)."""
        facts = record.get("pruned")
        if not (isinstance(facts, dict) and (facts.get("factor"), facts.get("margin")) == (self.factor, self.margin)
                and record.get("epochs_run") == epochs_logged and isinstance(facts.get("reach"), (int, float))):
            return False
        leader = self.leader()
        return leader is not None and facts["reach"] < leader[1]


def pruned_record(cfg, key: str, run_dir: Path, split, verdict: dict, started: float) -> dict:
    """The record of a run stopped by the rule after epoch verdict["epoch"]: its best epoch's weights evaluated as a
    finished run's would be (valid and test, and with the history kept when it is excluded), its compute from the
    checkpoint, and the verdict."""
    from genpas.search.run_logs import validation_curve
    from genpas.train.trainer import Trainer

    saved = load_state(run_dir / "last.pt")["trainer"]
    model = Trainer(cfg, run_dir, split=split, check_memory=False, weights=run_dir / "best.safetensors")
    evaluated = time.perf_counter()
    metrics = {which: model.evaluate(which) for which in ("valid", "test")}
    if cfg.exclude_history:
        metrics |= {f"{which}_history_kept": model.evaluate(which, exclude_history=False) for which in ("valid", "test")}
    seconds = time.perf_counter() - evaluated
    compute = saved.get("compute", {})
    return {"name": key, "config": cfg.to_dict(), **metrics, "best_epoch": saved["best_epoch"],
            "epochs_run": saved["epoch"] + 1, "stopped_by": "pruned", "train_seconds": saved["train_seconds"],
            "wall_seconds": time.perf_counter() - started,
            "eval_seconds": None if saved.get("valid_seconds") is None else saved["valid_seconds"] + seconds,
            "device": str(model.device), "data_sha256": saved.get("data"),
            **{k: compute.get(k, 0) for k in COMPUTE_KEYS}, "compute_at_best": saved.get("compute_at_best", {}),
            "curve": validation_curve(run_dir / "log.csv"), "pruned": verdict}


def apart(a: float, b: float) -> tuple[str, str]:
    """a and b with 4 decimals, or as many more (up to 8) as it takes to tell them apart."""
    digits = 4
    while f"{a:.{digits}f}" == f"{b:.{digits}f}" and digits < 8:
        digits += 1
    return f"{a:.{digits}f}", f"{b:.{digits}f}"
