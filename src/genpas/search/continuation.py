"""Continuing a capped run: a run asked for with a higher epoch cap starts where a finished run stopped at its cap.

Raising a campaign's bound on epochs (say TIGER's 20 to 40) makes new runs: `epochs` is part of the run key, as a
run's results depend on it. But a run that the old cap ended (`stopped_by == "epochs"`: neither patience nor a time
budget had stopped it) is exactly the first part of the longer run: the constant learning-rate schedule, the epoch
streams and the random state do not depend on the cap, and its last.pt holds all that resuming needs. So the store
copies that run's checkpoint, log and best weights into the new run's directory and resumes there; the result is the
one a training from scratch would give, for the cost of the missing epochs only. The finished run stays as it was
(its directory, its ledger record): the new one records where it started in `continued_from`, and its compute (steps,
targets, seconds) counts all its epochs, those trained under the other name included.

Not continued: runs with a cosine schedule (its decay is set by the cap), runs a patience or time budget ended, runs
of other data, and runs whose last.pt is gone (a finished run's checkpoint is not committed by default).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from genpas.atomic import atomic_path
from genpas.errors import GenpasError
from genpas.train.checkpoint import load_state
from genpas.train.config import LEGACY, TrainConfig
from genpas.train.run_dir import clear_run, trained_on

log = logging.getLogger(__name__)

MARK = "continued.json"  # in the new run's directory: {"from": the run it started from, "epochs": its epochs}
# What a continuation copies, last.pt last: a directory with last.pt is a run to resume, so it must come complete.
COPIED = ("config.yaml", "log.csv", "best.safetensors", "last.pt")


def predecessor(records, cfg: TrainConfig, fingerprint: str, identity, runs: Path) -> dict | None:
    """The finished run that run `cfg` may start from: among `records` (ledger records), one of the same
    configuration but for a lower epoch cap (`identity`: a config's keyed values, run_store.key_values), ended by
    that cap, trained on the data of `fingerprint` and whose checkpoint under `runs` is still there; the one with
    the most epochs. None if there is none, or `cfg` decays its learning rate by the cap (cosine)."""
    if cfg.cosine:
        return None
    wanted = {k: v for k, v in identity(cfg.to_dict()).items() if k != "epochs"}
    best = None
    for record in records:
        saved = {**LEGACY, **record.get("config", {})}
        if not isinstance(saved.get("epochs"), int) or saved["epochs"] >= cfg.epochs:
            continue
        if record.get("stopped_by") != "epochs" or record.get("epochs_run") != saved["epochs"]:
            continue
        if {k: v for k, v in identity(saved).items() if k != "epochs"} != wanted:
            continue
        if not trained_on(record, fingerprint) or not (runs / record["name"] / "last.pt").is_file():
            continue
        if best is None or record["epochs_run"] > best["epochs_run"]:
            best = record
    return best


def start_from(record: dict, run_dir: Path, runs: Path) -> bool:
    """Copy the capped run `record` (see predecessor) into the empty run directory `run_dir`, so that training
    there resumes after its last epoch; False (the directory left empty) if its checkpoint is not the one of its
    last epoch (a damaged or foreign last.pt): the run then trains from scratch."""
    source = runs / record["name"]
    try:
        trainer = load_state(source / "last.pt")["trainer"]
    except GenpasError as exc:
        log.warning("not continuing %s: %s", record["name"], exc)
        return False
    if trainer.get("epoch") != record["epochs_run"] - 1 or trainer.get("best_epoch") != record["best_epoch"]:
        log.warning("not continuing %s: its last.pt is not the checkpoint of its last epoch", record["name"])
        return False
    clear_run(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    mark = {"from": record["name"], "epochs": record["epochs_run"]}
    with atomic_path(run_dir / MARK) as tmp:
        tmp.write_text(json.dumps(mark) + "\n")
    for name in COPIED:  # each whole or not at all; a kill before last.pt leaves a directory that trains afresh
        with atomic_path(run_dir / name) as tmp:
            shutil.copyfile(source / name, tmp)
    log.warning("run %s continues %s after its epoch cap of %d epochs", run_dir.name, record["name"],
                record["epochs_run"])
    return True


def continued_from(run_dir: Path) -> str | None:
    """The run that the run in `run_dir` started from (start_from), or None: it trained from its first epoch."""
    try:
        mark = json.loads((Path(run_dir) / MARK).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return mark.get("from") if isinstance(mark, dict) and isinstance(mark.get("from"), str) else None
