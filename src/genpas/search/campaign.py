"""Campaigns: the runs an experiment needs, and several processes sharing one experiment directory.

An experiment is a function of a run store (experiments.py). Given a planning store it trains nothing and lists the
runs it would ask for, so `plan` can say which are finished, being trained, started (resumable) or pending. `share`
lets any number of processes, on one machine or on several that see the same directory, work through one
experiment: each walks the plan and trains the runs that no other process has claimed, and whichever finds every run
finished writes the results. Results do not depend on which process trained what: a run is keyed by its full
configuration and seeded by it.
"""

from __future__ import annotations

from genpas.search.experiments import RunStore
from genpas.train.run_dir import RunBusy, run_lock

STATES = ("finished", "running", "started", "pending")


def _planned(job, store: RunStore) -> list[tuple]:
    planner = RunStore(store.root, split=store.split, planning=True)
    job(planner)
    store.split = planner.split  # the split the plan loaded serves the training too
    return list({key: (key, name, cfg) for key, name, cfg in planner.planned}.values())


def state_of(store: RunStore, key: str) -> str:
    if key in store.ledger.done:
        return "finished"
    run_dir = store.root / "runs" / key
    try:
        with store.claim(key):
            if run_dir.exists():
                with run_lock(run_dir):
                    pass
    except RunBusy:
        return "running"
    return "started" if (run_dir / "last.pt").exists() else "pending"


def plan(job, store: RunStore) -> list[dict]:
    """Every run the experiment needs, in its order: key, strategy name, seed and state (one of STATES)."""
    return [{"key": key, "name": name, "seed": cfg.seed, "state": state_of(store, key)}
            for key, name, cfg in _planned(job, store)]


def share(job, store: RunStore) -> tuple[dict | None, list[str]]:
    """Train the experiment's runs that no other process holds, then return (its result, []) if every run is
    finished, else (None, the keys still being trained elsewhere)."""
    runs = _planned(job, store)  # the plan depends on configurations only, never on results: computed once
    for key, name, cfg in runs:
        if key in store.ledger.done:
            continue
        try:
            record = store.train(cfg, key)
        except RunBusy:  # another process trains it
            continue
        if store.on_result is not None:
            store.on_result(name, record)
    store.ledger.refresh()
    left = [key for key, _, _ in runs if key not in store.ledger.done]
    return (None, left) if left else (job(store), [])
