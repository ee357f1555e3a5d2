"""Continuing a capped run: a run asked for with a higher epoch cap starts where a finished run stopped at its cap.

Raising a campaign's bound on epochs (say TIGER's 20 to 40) makes new runs: `epochs` is part of the run key, as a
run's results depend on it. But a run that the old cap ended (`stopped_by == "epochs"`: neither patience nor a time
budget had stopped it) is exactly the first part of the longer run: the constant learning-rate schedule, the epoch
streams and the random state do not depend on the cap, and its last.pt holds all that resuming needs. So the store
copies that run's checkpoint, log and best weights into the new run's directory and resumes there; the result is the
one a training from scratch would give, for the cost of the missing epochs only. The finished run stays as it was
(its directory, its ledger record): the new one records where it started in `continued_from`, and its compute (steps,
targets, seconds) counts all its epochs, those trained under the other name included. A run that validation patience
ended before its cap needs nothing more: the higher cap never comes into play, so it is the longer run itself, and
the store gives its record for the higher cap (`converged`) without training.

Exact as any resume is: on the device and precision the first part ran on (a run continued on another machine
type gives what a resume there gives). Neither continued nor reused: runs with a cosine schedule (its decay is set by
the cap) or a time budget, runs of other data or of an earlier training protocol; not continued: runs whose files are
gone (a finished run's last.pt is committed only where scripts/park_runs.sh keeps it: runs their cap ended).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

from genpas.atomic import atomic_path, write_text
from genpas.errors import GenpasError
from genpas.train.checkpoint import load_state
from genpas.train.config import TrainConfig
from genpas.train.run_dir import clear_run, trained_on

log = logging.getLogger(__name__)

MARK = "continued.json"  # in the new run's directory: {"from": the run it started from, "epochs": its epochs}
# What a continuation copies, last.pt last: a directory with last.pt is a run to resume, so it must come complete.
COPIED = ("config.yaml", "log.csv", "best.safetensors", "last.pt")


def _lower_caps(records, cfg: TrainConfig, fingerprint: str, key_of):
    """The finished runs among `records` (ledger records) that are run `cfg` with a lower epoch cap (a name ending
    in `key_of` of that config: run_store.run_key, which also holds the training protocol), trained on the data of
    `fingerprint`. None of them where the cap shapes the run: a cosine schedule decays by it, and under a time
    budget where a run stops depends on the seconds it measured."""
    if cfg.cosine or cfg.time_budget_minutes is not None:
        return
    for record in records:
        epochs = record.get("config", {}).get("epochs")
        if not isinstance(epochs, int) or isinstance(epochs, bool) or not 0 < epochs < cfg.epochs:
            continue
        if record["name"].rsplit("-", 1)[-1] == key_of(replace(cfg, epochs=epochs)) and trained_on(record, fingerprint):
            yield record


def converged(records, cfg: TrainConfig, fingerprint: str, key_of) -> dict | None:
    """A finished run of `cfg` with a lower cap (see _lower_caps) that validation patience ended: the higher cap
    never comes into play, so it is the run of `cfg` itself, epoch for epoch; None if there is none."""
    return next((r for r in _lower_caps(records, cfg, fingerprint, key_of) if r.get("stopped_by") == "patience"), None)


def predecessor(records, cfg: TrainConfig, fingerprint: str, key_of, runs: Path) -> dict | None:
    """The finished run that run `cfg` may start from: a run of `cfg` with a lower cap (see _lower_caps) that its
    cap ended (all its epochs run) and whose files under `runs` are all still there; the one with the most epochs,
    or None."""
    capped = [r for r in _lower_caps(records, cfg, fingerprint, key_of)
              if r.get("stopped_by") == "epochs" and r.get("epochs_run") == r["config"]["epochs"]
              and all((runs / r["name"] / f).is_file() for f in COPIED)]
    return max(capped, key=lambda r: r["epochs_run"], default=None)


def start_from(record: dict, run_dir: Path, runs: Path) -> bool:
    """Copy the capped run `record` (see predecessor) into `run_dir`, which holds no checkpoint, so that training
    there resumes after its last epoch; False (the directory emptied) if its checkpoint is not the one of its last
    epoch (a damaged or foreign last.pt) or a file cannot be copied: the run then trains from scratch."""
    source = runs / record["name"]
    clear_run(run_dir)  # what a copy cut short by a kill left
    try:
        trainer = load_state(source / "last.pt")["trainer"]
        if trainer.get("epoch") != record["epochs_run"] - 1 or trainer.get("best_epoch") != record["best_epoch"]:
            raise GenpasError(f"{source / 'last.pt'} is not the checkpoint of the run's last epoch")
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in COPIED:  # last.pt last, each whole or not at all: a kill before it leaves no run to resume
            with atomic_path(run_dir / name) as tmp:
                shutil.copyfile(source / name, tmp)
                if name == "last.pt":  # the mark goes in just before the checkpoint that makes the run resumable
                    write_text(run_dir / MARK, json.dumps({"from": record["name"], "epochs": record["epochs_run"]}))
    except (GenpasError, OSError) as exc:
        log.warning("not continuing %s: %s; the run trains from its first epoch", record["name"], exc)
        clear_run(run_dir)
        return False
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
