"""The parameter search (spec section 7): screen without training, train the top K and the baselines, pick by
validation NDCG@10, report test.

Durability: every finished training is appended to DIR/ledger.jsonl (flushed and fsynced) and each training keeps its
own resumable run directory, so a killed search continues where it stopped: finished trainings are read back from
the ledger, an interrupted one resumes from its last epoch. Several processes (on one machine, or on several that
see the directory with working file locks) may run the same search: each trains the jobs no other process holds,
then waits for the others and resumes any whose process died, so k processes finish the trainings about k times
sooner, and every one writes the same search.json.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import replace
from pathlib import Path

from genpas.atomic import write_text
from genpas.augment import make_strategy
from genpas.search.screening import screen, spearman
from genpas.train.config import TrainConfig, same_config
from genpas.train.run_dir import RunBusy, can_lock, run_lock
from genpas.train.trainer import PROTOCOL, load_split, train_owned

log = logging.getLogger(__name__)
BASELINES = ("lt", "mt", "sw")
METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def _slim(metrics: dict) -> dict:
    return {k: metrics[k] for k in METRICS}


def _name(alpha, beta, gamma) -> str:
    def f(x):
        return ("inf" if x > 0 else "-inf") if math.isinf(x) else f"{x:g}"
    return f"genpas_{f(alpha)}_{f(beta)}_{f(gamma)}"


class Ledger:
    """Append-only JSON lines of finished trainings, keyed by name."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.done: dict[str, dict] = {}
        self.refresh()

    def refresh(self) -> None:
        """Read the file again: other processes sharing the store may have appended runs."""
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:  # a line cut by a crash mid-write: that training reruns
                        continue
                    self.done[record["name"]] = record

    def add(self, record: dict) -> None:
        """Append one line with a single O_APPEND write under an exclusive lock, so processes sharing a store (on
        one machine or several) never interleave or overwrite lines; closing the file releases the lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if can_lock():  # O_APPEND alone is not atomic across NFS clients; the lock makes each append whole
                import fcntl

                fcntl.flock(fd, fcntl.LOCK_EX)
            written = os.write(fd, line)
            while written < len(line):  # a short write (rare): finish it
                written += os.write(fd, line[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        self.done[record["name"]] = record


def search(base: TrainConfig, out: Path, top_k: int = 10, seed: int = 0, budget_minutes: float | None = None,
           keep_fraction: float = 0.2, samples: int = 8, on_result=None) -> dict:
    """Run (or resume) the search; writes and returns the search.json object."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = replace(base, seed=seed)
    split = load_split(base)
    start = time.perf_counter()
    screened = screen(split, keep_fraction=keep_fraction, max_len=base.max_len, samples=samples, seed=seed)
    screen_seconds = time.perf_counter() - start
    candidates = [r for r in screened if r["survivor"]][:top_k]
    jobs = [(b, dict(strategy=b)) for b in BASELINES]
    jobs += [(_name(r["alpha"], r["beta"], r["gamma"]),
              dict(strategy="genpas", alpha=r["alpha"], beta=r["beta"], gamma=r["gamma"])) for r in candidates]
    if budget_minutes is not None:  # share the training budget equally
        base = replace(base, time_budget_minutes=budget_minutes / len(jobs))
    ledger = Ledger(out / "ledger.jsonl")
    finished, held = {}, []
    # Several processes may run one search: each trains the jobs no other process holds, then waits for the rest (and
    # resumes any whose process died). The pick depends on the records only, so every process writes the same result.
    for name, overrides in jobs:
        try:
            finished[name] = _job(name, replace(base, **overrides), out, split, ledger, wait=False)
        except RunBusy:
            held.append((name, overrides))
            continue
        if on_result is not None:
            on_result(name, finished[name])
    for name, overrides in held:
        log.warning("waiting for %s, which another process is training", name)
        finished[name] = _job(name, replace(base, **overrides), out, split, ledger, wait=True)
        if on_result is not None:
            on_result(name, finished[name])

    trained = []
    for r in candidates:
        rec = finished[_name(r["alpha"], r["beta"], r["gamma"])]
        trained.append({"alpha": r["alpha"], "beta": r["beta"], "gamma": r["gamma"], "kl": r["kl"],
                        "ratio": r["ratio"], "valid": rec["valid"], "test": rec["test"],
                        "best_epoch": rec["best_epoch"], "train_seconds": rec["train_seconds"]})
    baselines = {b: {"valid": finished[b]["valid"], "test": finished[b]["test"],
                     "train_seconds": finished[b]["train_seconds"]} for b in BASELINES}
    # The pick: the best validation NDCG@10 over the trained GenPAS settings and the baselines (LT and MT are GenPAS
    # settings too); the test figures of the pick are reported whatever they are.
    pool = [dict(t, strategy="genpas") for t in trained]
    for b in BASELINES:
        s = make_strategy(b)
        pool.append({"alpha": s.alpha, "beta": s.beta, "gamma": s.gamma, "strategy": b, **baselines[b]})
    best = max(pool, key=lambda r: r["valid"]["ndcg@10"])
    result = {
        "data": base.data,
        "model": base.model,
        "seed": seed,
        "screened": [{k: r[k] for k in ("alpha", "beta", "gamma", "kl", "ratio", "alignment", "discrimination",
                                        "survivor")} for r in screened],
        "trained": trained,
        "baselines": baselines,
        "best": {k: best[k] for k in ("strategy", "alpha", "beta", "gamma", "valid", "test")},
        "best_baseline_valid_ndcg@10": max(v["valid"]["ndcg@10"] for v in baselines.values()),
        "screening_predicts_training": {
            "spearman_kl_vs_valid_ndcg@10": spearman([t["kl"] for t in trained], [t["valid"]["ndcg@10"] for t in trained]),
            "spearman_ratio_vs_valid_ndcg@10": spearman([t["ratio"] for t in trained],
                                                         [t["valid"]["ndcg@10"] for t in trained]),
        },
        "screen_seconds": screen_seconds,
        "config": base.to_dict(),
    }
    write_text(out / "search.json", json.dumps(_json_safe(result), indent=2) + "\n")
    return result


def _job(name: str, cfg: TrainConfig, out: Path, split, ledger: Ledger, wait: bool) -> dict:
    """The ledger record of one search training: read back when finished under the same configuration, else trained
    (or resumed) under its run directory's lock; RunBusy when another process holds it and `wait` is False."""
    def done():
        record = ledger.done.get(name)
        fresh = record is not None and same_config(record["config"], cfg) and record.get("protocol") == PROTOCOL
        return record if fresh else None

    if done():
        return done()
    run_dir = out / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir, wait):  # the trainer's own lock re-enters it
        ledger.refresh()  # another process may have finished it while this one waited
        if done():
            return done()
        metrics = train_owned(cfg, run_dir, split=split)
        record = {"name": name, "config": cfg.to_dict(), "protocol": PROTOCOL, "valid": _slim(metrics["valid"]),
                  "test": _slim(metrics["test"]), "best_epoch": metrics["best_epoch"],
                  "train_seconds": metrics["train_seconds"]}
        ledger.add(record)
        return record


def _json_safe(obj):
    """inf -> "inf" / "-inf" (JSON has no infinity)."""
    if isinstance(obj, float) and math.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def format_search(result: dict) -> str:
    lines = [f"{'setting':32s}{'KL':>8s}{'ratio':>8s}{'valid ndcg@10':>15s}{'test ndcg@10':>14s}", "-" * 77]
    for name, b in result["baselines"].items():
        lines.append(f"{name.upper():32s}{'':8s}{'':8s}{b['valid']['ndcg@10']:15.4f}{b['test']['ndcg@10']:14.4f}")
    for t in result["trained"]:
        label = make_strategy("genpas", t["alpha"], t["beta"], t["gamma"]).label
        lines.append(f"{label:32s}{t['kl']:8.3f}{t['ratio']:8.3f}{t['valid']['ndcg@10']:15.4f}{t['test']['ndcg@10']:14.4f}")
    best = result["best"]
    lines.append("")
    lines.append(f"best: {best['strategy']} (alpha {best['alpha']}, beta {best['beta']}, gamma {best['gamma']}): "
                 f"valid ndcg@10 {best['valid']['ndcg@10']:.4f}, test ndcg@10 {best['test']['ndcg@10']:.4f}")
    sp = result["screening_predicts_training"]
    def rho(value):
        return "n/a" if value is None else f"{value:+.2f}"

    lines.append(f"screening vs training (Spearman over trained settings): KL {rho(sp['spearman_kl_vs_valid_ndcg@10'])}, "
                 f"ratio {rho(sp['spearman_ratio_vs_valid_ndcg@10'])}")
    return "\n".join(lines)
