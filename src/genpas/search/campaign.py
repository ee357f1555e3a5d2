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
from pathlib import Path

from genpas.errors import GenpasError
from genpas.search.experiments import RunStore
from genpas.search.run_logs import run_progress
from genpas.search.run_store import work_through
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
        state, run_dir, extra = plan_entry(store, cfg, key)
        progress = run_progress(run_dir / ("log.csv" if state != "pending" else ".none"), cfg)  # pending: no epochs
        runs.append({"key": key, "name": name, "seed": cfg.seed, "state": state, **progress}
                    | ({"epochs_left": 0} if state == "finished" else {}) | extra)
    return runs


def plan_entry(store: RunStore, cfg, key: str) -> tuple[str, Path, dict]:
    """Run `key`'s state in a plan (one of STATES), the directory its progress is read from, and what the plan adds:
    a run of `cfg` under a lower epoch cap that patience ended stands for it (finished, same_as, whatever its own
    directory holds); a pending run that will go on from a run its lower cap ended names that run (continues) and
    its epochs (continues_after): see continuation.py."""
    found = store.finished(cfg, key)
    if found is not None and found["name"] != key:
        return "finished", store.root / "runs" / found["name"], {"same_as": found["name"]}
    state = retrained(store, cfg, key, state_of(store, key))
    capped = store.capped(cfg) if state == "pending" else None
    extra = {"continues": capped["name"], "continues_after": capped["epochs_run"]} if capped else {}
    return state, store.root / "runs" / key, extra


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
