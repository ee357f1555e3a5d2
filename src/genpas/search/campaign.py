"""Campaigns: the runs an experiment needs, and several processes sharing one experiment directory.

An experiment is a function of a run store (experiments.py). Given a planning store it trains nothing and lists the
runs it would ask for, so `plan` can say which are finished, being trained, started (resumable) or pending; it only
reads the directory. `share` lets any number of processes, on one machine or on several that see the same directory
(with working file locks), work through one experiment: each first walks the plan and trains the runs that no other
process has claimed, then waits for the runs others hold, and takes over any whose process died (its claim dies
with it; the run resumes from its last epoch). So every worker ends with every run finished and writes the same
results. Results do not depend on which process trained what: a run is keyed by its full configuration and seeded
by it.
"""

from __future__ import annotations

import logging

from genpas.errors import GenpasError
from genpas.search.experiments import RunStore
from genpas.search.run_store import run_progress, work_through
from genpas.train.run_dir import can_lock, held_elsewhere

log = logging.getLogger(__name__)
STATES = ("finished", "running", "started", "pending")


def _planned(job, store: RunStore) -> list[tuple]:
    planner = RunStore(store.root, split=store.split, planning=True)
    job(planner)
    store.split = planner.split  # the split the plan loaded serves the training too
    return list({key: (key, name, cfg) for key, name, cfg in planner.planned}.values())


def state_of(store: RunStore, key: str) -> str:
    """One of STATES, read without taking any lock or writing anything."""
    if key in store.ledger.done:
        return "finished"
    run_dir = store.root / "runs" / key
    if held_elsewhere(store.root / "runs" / ".claims" / key) or held_elsewhere(run_dir / ".lock"):
        return "running"
    return "started" if (run_dir / "last.pt").exists() else "pending"


def plan(job, store: RunStore) -> list[dict]:
    """Every run the experiment needs, in its order: key, strategy name, seed, state (one of STATES), and its
    progress (run_store.run_progress: epochs, best validation NDCG@10 and its epoch, epochs left unless it improves,
    recent seconds an epoch); a pending run that will go on from a finished run capped at fewer epochs names it
    (continues) and its epochs (continues_after), and a run that patience ended under a lower cap is finished, the
    same run (same_as). A run finished on other data than the configuration names now is pending: it trains
    again (reading the data for that check takes seconds, once)."""
    runs = []
    for key, name, cfg in _planned(job, store):
        state = retrained(store, cfg, key, state_of(store, key))
        same = store.uncapped(cfg) if state == "pending" else None  # finished under a lower cap, by patience
        state = "finished" if same else state
        log_csv = store.root / "runs" / (same["name"] if same else key) / ("log.csv" if state != "pending" else ".none")
        progress = run_progress(log_csv, cfg)
        capped = store.capped(cfg) if state == "pending" else None  # trains on from a run capped lower
        runs.append({"key": key, "name": name, "seed": cfg.seed, "state": state, **progress}
                    | ({"epochs_left": 0} if state == "finished" else {})
                    | ({"continues": capped["name"], "continues_after": capped["epochs_run"]} if capped else {})
                    | ({"same_as": same["name"]} if same else {}))
    return runs


def retrained(store: RunStore, cfg, key: str, state: str) -> str:
    """`state`, unless the ledger holds the run as finished on other data than cfg's now: then the store trains it
    again, so it is running where a process holds it, else pending (what its directory holds is of the old data),
    and a warning says so."""
    if state != "finished" or store.finished(cfg, key) is not None:
        return state
    log.warning("run %s finished on other data than %s holds now: it trains again", key, cfg.data)
    run_dir = store.root / "runs" / key
    held = held_elsewhere(store.root / "runs" / ".claims" / key) or held_elsewhere(run_dir / ".lock")
    return "running" if held else "pending"


def share(job, store: RunStore, wait: bool = True) -> dict:
    """Train the experiment's runs as one of several workers (see the module docstring); returns its result. A
    worker that does not `wait` trains only the runs no other process holds, passing over the held ones again as
    long as a pass finds one of them free, then raises LeftToOthers naming those still held (so it can go on to other
    work; the last worker to finish writes the result)."""
    if not can_lock():
        raise GenpasError("--share needs advisory file locks (POSIX fcntl), which this platform lacks")
    runs = _planned(job, store)  # the plan depends on configurations only, never on results: computed once
    work_through([(key, (name, cfg)) for key, name, cfg in runs if store.finished(cfg, key) is None],
                 lambda run, wait_now: store.get(run[1], run[0], wait=wait_now), wait)
    return job(store)
