"""The run store: trainings keyed by their full configuration, shared by every job of one directory.

A run is trained at most once per directory: it lives in its own resumable run directory (DIR/runs/<name>-<key>/),
where <key> hashes every option that changes what it computes, and its record (metrics, compute, device, validation
curve) is appended to DIR/ledger.jsonl once finished. Experiments (experiments.py) and the parameter search
(trained.py) ask the store for runs, so a search and the experiments of one directory reuse each other's runs, and a
killed job continues where it stopped.

Several processes may share a store, on one machine or on several that see the directory with working file locks: a
run is trained under a claim (DIR/runs/.claims/<key>), a lock that dies with its process, so no two processes train
the same run and a dead worker's run is taken over and resumed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from genpas.errors import GenpasError
from genpas.search.continuation import continued_from, converged, predecessor, start_from
from genpas.search.pruning import Prune, Pruned, apart, pruned_record
from genpas.search.run_logs import validation_curve
from genpas.train.config import LEGACY, TrainConfig
from genpas.train.loss import COMPUTE_KEYS
from genpas.train.metrics import GROUP_NAMES
from genpas.train.run_dir import RunBusy, can_lock, exclusive, held_elsewhere, trained_on
from genpas.train.trainer import PROTOCOL, load_split, train_owned

log = logging.getLogger(__name__)

METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")

# Options that do not change what a run computes: left out of the run key, so toggling them reuses finished runs.
NOT_IN_KEY = ("progress", "device", "num_workers", "threads", "eval_batch_size")
# Options only TIGER reads: not part of another model's key.
TIGER_ONLY = ("levels", "codebook_size", "beam", "item_embeddings", "item_text", "text_model", "encoder_input")
HSTU_ONLY = ("attention_dim", "linear_dim", "time_buckets")


def run_key(cfg: TrainConfig) -> str:
    ignored = NOT_IN_KEY + (TIGER_ONLY if cfg.model != "tiger" else ()) + (HSTU_ONLY if cfg.model != "hstu" else ())
    # An option added after runs were first recorded stays out of the key at its LEGACY value: old keys hold.
    values = {k: v for k, v in cfg.to_dict().items()
              if k not in ignored and not (k in LEGACY and v == LEGACY[k])}
    values["protocol"] = PROTOCOL  # runs of an earlier training protocol are never reused as current ones
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def run_name(cfg: TrainConfig, strategy: str | None = None) -> str:
    """A run's name in the store (its directory under runs/ and its ledger key): <strategy>-<run_key>."""
    return f"{strategy or cfg.strategy}-{run_key(cfg)}"


class LeftToOthers(GenpasError):
    """A worker that does not wait stopped while other processes still train some of the runs (`keys`)."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        super().__init__(f"{len(keys)} run(s) left to the processes training them ({', '.join(keys)}); run the "
                         "command again once they finish to write the results")


_REPORTED: set[tuple[str, int]] = set()  # ledger lines already reported as cut


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_record(record) -> bool:
    """An object with a string "name" whose valid and test metrics (where present) hold every metric of METRICS, and
    only finite numbers, and whose training seconds (where present) are a finite number."""
    if not isinstance(record, dict) or not isinstance(record.get("name"), str):
        return False
    if "train_seconds" in record and not _number(record["train_seconds"]):
        return False
    metrics = [record[split] for split in ("valid", "test") if split in record]
    return all(isinstance(m, dict) and set(METRICS) <= set(m) and all(_number(v) for k, v in m.items() if "@" in k)
               for m in metrics)


class Ledger:
    """Append-only JSON lines of finished trainings, keyed by name.

    A line cut short by a crash mid-write is not JSON: it is reported once (a warning naming the line) and its
    training counts as unfinished, so it reruns; the next append starts on a line of its own. A line that is JSON
    but not a run record (an object with a string "name") is damage, not a crash: one GenpasError naming it."""

    def __init__(self, path: Path, lost: str = "that training counts as unfinished and reruns",
                 remedy: str = "remove the line, or the file to retrain every run"):
        self.path = Path(path)
        self.lost, self.remedy = lost, remedy  # what a cut line means, and what to do about a damaged one
        self.done: dict[str, dict] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the file again: other processes sharing the store may have appended runs."""
        if not self.path.exists():
            return
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise GenpasError(f"{self.path}: unreadable run ledger ({exc})") from None
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                if (str(self.path), number) not in _REPORTED:  # once per process, however many readers
                    _REPORTED.add((str(self.path), number))
                    log.warning("%s: line %d is not a complete record (a write cut by a crash?); %s", self.path,
                                number, self.lost)
                continue
            if not _is_record(record):
                raise GenpasError(f"{self.path}: line {number}: not a run record (an object with a \"name\" and "
                                  f"numeric metrics); {self.remedy}")
            self.done[record["name"]] = record

    def add(self, record: dict) -> None:
        """Append one line with a single O_APPEND write under an exclusive lock, so processes sharing a store (on
        one machine or several) never interleave or overwrite lines; closing the file releases the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if can_lock():  # O_APPEND alone is not atomic across NFS clients; the lock makes each append whole
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.lseek(fd, size - 1, os.SEEK_SET) >= 0 and os.read(fd, 1) != b"\n":
                line = b"\n" + line  # a line cut by a crash: start a line of our own (O_APPEND writes at the end)
            written = os.write(fd, line)
            while written < len(line):  # a short write (rare): finish it
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done[record["name"]] = record


@dataclass
class RunStore:
    """Trainings shared by all experiments of one directory; each is trained at most once (see module docstring).

    Several processes may share a store: a run is trained under a claim (DIR/runs/.claims/<key>), so no two
    processes train the same run, and finished runs are read back from the ledger that all of them append to. A
    planning store trains nothing: it lists the runs an experiment needs (campaign.py)."""

    root: Path
    split: object = None
    on_result: object = None  # called with (name, record) after each run, trained or reused
    planning: bool = False
    planned: list = field(default_factory=list)  # (key, name, config) of every run a planning store was asked for
    ledger: Ledger = field(init=False)
    _pruned: Ledger | None = field(default=None, init=False, repr=False)  # read when a search prunes (pruning.py)
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self):
        self.root = Path(self.root)
        self.ledger = Ledger(self.root / "ledger.jsonl")

    def get(self, cfg: TrainConfig, name: str, wait: bool = True, prune: Prune | None = None) -> dict:
        """The record of run `cfg`, trained here unless finished (see `train` for `wait`). With `prune` (a search's
        rule, pruning.py) a run the rule stops, or stopped before, gives its pruned record instead."""
        key = run_name(cfg, name)
        record = self.ledger.done.get(key)
        if self.planning:
            self.planned.append((key, name, cfg))
            return stand_in(cfg) if record is None else record
        if record is None or not trained_on(record, self._data(cfg)):
            stale, record = record is not None, self.uncapped(cfg)  # the same run, finished under a lower cap
            if stale and record is None:  # its directory is emptied by the data check of train_owned
                log.warning("run %s was trained on other data than %s has now; training it again", key, cfg.data)
        if record is None and prune is not None:
            record = self.stopped(cfg, key, prune)
        if record is None:
            try:
                record = self.train(cfg, key, wait, prune)
            except RunBusy:  # held by another process, unless it was only reading back a run finished meanwhile
                self.ledger.refresh()
                record = self.finished(cfg, key) or (self.stopped(cfg, key, prune) if prune is not None else None)
                if record is None:
                    raise
        if "device" not in record:  # recorded before the ledger kept devices: the run's own metrics.json has it
            saved = self.root / "runs" / record["name"] / "metrics.json"
            record["device"] = json.loads(saved.read_text()).get("device", "unknown") if saved.exists() else "unknown"
        if self.on_result is not None:
            self.on_result(name, record)
        return record

    def finished(self, cfg: TrainConfig, key: str) -> dict | None:
        """The ledger's record of run `key` if it finished on the data at hand (or before runs recorded their data),
        else that of the same run under a lower epoch cap that patience ended (`uncapped`), or None."""
        record = self.ledger.done.get(key)
        return record if record is not None and trained_on(record, self._data(cfg)) else self.uncapped(cfg)

    def uncapped(self, cfg: TrainConfig) -> dict | None:
        """The record of run `cfg` under a lower epoch cap, where validation patience ended it before that cap: the
        same run, epoch for epoch, so its record stands for `cfg`'s (continuation.py); None if there is none."""
        return converged(self.ledger.done.values(), cfg, self._data(cfg), run_key)

    @property
    def pruned(self) -> Ledger:
        """DIR/pruned.jsonl: the runs searches stopped as hopeless (pruning.py), unfinished and resumable."""
        if self._pruned is None:
            self._pruned = Ledger(self.root / "pruned.jsonl", lost="that run is no longer taken as pruned: it resumes",
                                  remedy="remove the line, or the file (its pruned runs then resume)")
        return self._pruned

    def stopped(self, cfg: TrainConfig, key: str, prune: Prune) -> dict | None:
        """The pruned record of run `key` if the run is unfinished and `prune` stands by the record
        (pruning.Prune.accepts: the same rule, no epoch trained since, and still below this search's leader)."""
        self.ledger.refresh()
        self.pruned.refresh()
        record = self.pruned.done.get(key)
        if record is None or self.finished(cfg, key) is not None or not trained_on(record, self._data(cfg)):
            return None
        return record if prune.accepts(record, len(validation_curve(self.root / "runs" / key / "log.csv"))) else None

    def capped(self, cfg: TrainConfig) -> dict | None:
        """The record of the finished run that run `cfg` continues, being the same run capped at fewer epochs
        (continuation.py), or None."""
        return predecessor(self.ledger.done.values(), cfg, self._data(cfg), run_key, self.root / "runs")

    def _data(self, cfg: TrainConfig) -> str:
        """The fingerprint of the data the store's runs train on (read once, when a finished run is first reused)."""
        if self.split is None:
            self.split = load_split(cfg)
        if self._fingerprint is None:
            self._fingerprint = self.split.full.fingerprint()
        return self._fingerprint

    def claim(self, key: str, wait: bool = False):
        """The lock a process holds while it trains run `key`: wait for it, or raise RunBusy if another process
        holds it."""
        return exclusive(self.root / "runs" / ".claims" / key,
                         f"run {key} of {self.root} is being trained by another process", wait)

    def train(self, cfg: TrainConfig, key: str, wait: bool = True, prune: Prune | None = None) -> dict:
        """Train run `key` under its claim, unless another process finished it meanwhile; returns its record. By
        default a run another process holds is waited for (then read back); wait=False raises RunBusy instead.
        With `prune`, the rule is checked after every epoch: a run it stops gets a pruned record (pruning.py),
        written to DIR/pruned.jsonl under the claim, so no other process resumes it meanwhile."""
        if wait and held_elsewhere(self.root / "runs" / ".claims" / key):
            log.warning("waiting for run %s, which another process is training", key)
        with self.claim(key, wait):
            self.ledger.refresh()
            done = self.finished(cfg, key)
            if done is None and prune is not None:
                done = self.stopped(cfg, key, prune)
            if done is not None:
                return done
            if self.split is None:
                self.split = load_split(cfg)
            run_dir = self.root / "runs" / key
            if not (run_dir / "last.pt").exists() and (capped := self.capped(cfg)) is not None:
                start_from(capped, run_dir, run_dir.parent)  # a run capped at fewer epochs goes on (continuation.py)
            start = time.perf_counter()

            def check(epoch: int) -> None:
                scores = [score for _, score in validation_curve(run_dir / "log.csv")]
                verdict = prune.verdict(scores, cfg.epochs, cfg.patience)
                if verdict is not None:
                    raise Pruned(verdict)

            try:
                metrics = train_owned(cfg, run_dir, split=self.split, wait=wait,
                                      after_epoch=None if prune is None else check)
                verdict = None
            except Pruned as stop:
                verdict = stop.verdict
            if verdict is not None:  # evaluated outside the handler, whose traceback holds the training's model
                record = pruned_record(cfg, key, run_dir, self.split, verdict, start)
                self.pruned.add(record)
                reach, leader = apart(verdict["reach"], verdict["leader_valid_ndcg@10"])
                log.warning("stopped %s after epoch %d: its best valid NDCG@10 %.4f would reach at most %s, "
                            "below %s's %s (--prune)", key, verdict["epoch"], verdict["best"], reach,
                            verdict["leader"], leader)
                return record
            record = {"name": key, "config": cfg.to_dict(), "valid": metrics["valid"], "test": metrics["test"],
                      "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
                      "stopped_by": metrics.get("stopped_by"), "train_seconds": metrics["train_seconds"],
                      "wall_seconds": time.perf_counter() - start,  # of this process's part only, if resumed
                      "eval_seconds": metrics.get("eval_seconds"),
                      "device": metrics.get("device", "unknown"), "precision": metrics.get("precision"),
                      "data_sha256": metrics.get("data_sha256"),
                      **{k: metrics.get(k, 0) for k in COMPUTE_KEYS},
                      "compute_at_best": metrics.get("compute_at_best", {}),
                      **{k: metrics[k] for k in ("valid_history_kept", "test_history_kept") if k in metrics},
                      "curve": validation_curve(run_dir / "log.csv")}
            if (origin := continued_from(run_dir)) is not None:
                record["continued_from"] = origin
            self.ledger.add(record)
            return record


def work_through(runs: list[tuple[str, object]], attempt, wait: bool) -> None:
    """How a worker shares runs with other processes: `attempt(run, False)` on each (key, run) of `runs`, which
    trains or reads back the run, or raises RunBusy while another process holds it; the held ones are passed over
    again as long as a pass finds one of them free. Those still held are then waited for, `attempt(run, True)`
    (which also takes over a run whose process died), or without `wait` LeftToOthers names them."""
    held = list(runs)
    while held:
        still = []
        for key, run in held:
            try:
                attempt(run, False)
            except RunBusy:
                still.append((key, run))
        if len(still) == len(held):  # a pass that found nothing free
            break
        held = still
    if held and not wait:
        raise LeftToOthers([key for key, _ in held])
    for _, run in held:
        attempt(run, True)


def stand_in(cfg: TrainConfig) -> dict:
    """A record of zeros in the shape of a finished run's, for planning passes only (their results are discarded)."""
    zeros = {k: 0.0 for k in METRICS}
    metrics = {**zeros, "users": 0, "groups": {g: {"users": 0, **zeros} for g in GROUP_NAMES}}
    return {"name": "planned", "config": cfg.to_dict(), "valid": metrics, "test": metrics, "best_epoch": 0,
            "epochs_run": 0, "train_seconds": 0.0, "wall_seconds": 0.0, "eval_seconds": 0.0, "device": "none",
            **{k: 0 for k in COMPUTE_KEYS}, "compute_at_best": {}, "curve": []}


def seconds_with_evaluation(record: dict) -> float | None:
    """A run's training plus evaluation seconds over all its sessions, or None where unknown: a record written
    before runs counted their evaluation time has only the wall time of the process that finished it, which is the
    whole run's only if that process trained it from the start (a wall time under the training time is not)."""
    if record.get("eval_seconds") is not None:
        return record["train_seconds"] + record["eval_seconds"]
    wall = record.get("wall_seconds")
    return wall if wall is not None and wall >= record["train_seconds"] and "eval_seconds" not in record else None


def ended_by(record: dict) -> str | None:
    """Why a run's training ended: patience (converged on validation), time_budget (bounded), epochs (the cap), or
    None for an untrained model (popularity). Runs written before metrics.json said it are read from their counts."""
    cfg = record.get("config", {})
    if record.get("stopped_by") == "time_budget" and record.get("epochs_run", 0) >= cfg.get("epochs", float("inf")):
        return "epochs"  # written while a run that got all its epochs and spent its budget said time_budget
    if record.get("stopped_by") or not record.get("epochs_run"):
        return record.get("stopped_by")
    if record["epochs_run"] - 1 - record["best_epoch"] >= cfg["patience"]:
        return "patience"
    return "epochs" if record["epochs_run"] >= cfg["epochs"] else "time_budget"

