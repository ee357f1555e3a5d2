"""Analysis at scale: the exact training-target distribution and the KL to the held-out targets, per user range.

p_train(i) = sum over target positions (u, k) of p(u) p(k | u) [s_k = i] is a group-by sum over events: each user
range computes its positions' weights in closed form (PairDistribution, the in-process formulas) and its held-out
targets, and the engine sums them by item: numpy's bincount on one machine (polars), a groupBy on Spark. The result
equals genpas.analysis's numbers (a test holds them to 1e-12).

What needs pair sampling (alignment and discrimination) stays in process: `genpas analyze` without --engine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genpas.analysis.target import SMOOTHING, kl_divergence
from genpas.augment import PairDistribution
from genpas.augment.partitioned import partition_count, user_ranges
from genpas.augment.strategy import Strategy
from genpas.data.split import training_lengths
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError


@dataclass(frozen=True)
class AnalysisJob:
    store: str
    strategy: Strategy
    split: str = "loo"
    eval_on: str = "valid"

    def open(self):
        store = SequenceStore.load(Path(self.store), mmap=True, verify="sizes")
        train = training_lengths(store.lengths, self.split)
        return store, train, PairDistribution(train, self.strategy)


def range_sums(job: AnalysisJob, store, train, dist, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item codes, training-target weight, held-out count) of users lo .. hi-1, summed per item within the range."""
    n = train[lo:hi]
    positions = np.maximum(n - 1, 0)  # target positions k = 2 .. n of each user
    u = np.repeat(np.arange(lo, hi, dtype=np.int64), positions)
    k = 2 + np.arange(len(u), dtype=np.int64) - np.repeat(np.cumsum(positions) - positions, positions)
    weight = dist.user_prob[u] * dist.target_prob(train[u], k)
    items = np.asarray(store.items[store.offsets[u] + k - 1], dtype=np.int64)
    full = store.lengths[lo:hi]
    evaluable = np.flatnonzero(full >= 3) + lo
    back = 2 if job.eval_on == "valid" else 1
    held = np.asarray(store.items[store.offsets[evaluable] + store.lengths[evaluable] - back], dtype=np.int64)
    touched = np.unique(np.concatenate([items, held]))
    w = np.bincount(np.searchsorted(touched, items), weights=weight, minlength=len(touched))
    c = np.bincount(np.searchsorted(touched, held), minlength=len(touched)).astype(np.float64)
    return touched, w, c


def analyze_at_scale(job: AnalysisJob, engine: str = "polars", partitions: int | None = None,
                     smoothing: float = SMOOTHING, master: str = "local[*]") -> dict:
    if job.eval_on not in ("valid", "test"):
        raise GenpasError(f"unknown --eval {job.eval_on!r}; use 'valid' or 'test'")
    if not 0 <= smoothing < 1:  # (also refuses nan)
        raise GenpasError(f"--smoothing must be in [0, 1), got {smoothing}")
    start = time.perf_counter()
    store, train, dist = job.open()
    parts = partition_count(partitions, store.num_interactions)
    ranges = user_ranges(train, parts)
    if engine == "polars":
        p_train = np.zeros(store.num_items)
        held = np.zeros(store.num_items)
        for lo, hi in ranges:
            items, w, c = range_sums(job, store, train, dist, lo, hi)
            p_train[items] += w
            held[items] += c
    elif engine == "spark":
        from genpas.engines.spark_engine import analysis_sums_spark

        p_train, held = analysis_sums_spark(job, ranges, store.num_items, master)
    else:
        raise GenpasError(f"--engine: unknown {engine!r}; choose polars or spark")
    if held.sum() == 0:
        raise GenpasError("no user has the 3 events leave-one-out needs (training, validation and test)")
    p_eval = held / held.sum()
    p_train = p_train / p_train.sum()
    nz_t, nz_e = np.flatnonzero(p_train > 0), np.flatnonzero(p_eval > 0)
    return {
        "strategy": {**job.strategy.as_dict(), "label": job.strategy.label},
        "split": job.split, "eval": job.eval_on, "smoothing": smoothing,
        "kl": kl_divergence(p_eval, p_train, smoothing),
        "support_pairs": dist.support_size,
        "target_distribution": {str(store.item_ids[i]): float(p_train[i]) for i in nz_t},
        "eval_distribution": {str(store.item_ids[i]): float(p_eval[i]) for i in nz_e},
        "engine": engine, "partitions": len(ranges), "seconds": time.perf_counter() - start,
    }
