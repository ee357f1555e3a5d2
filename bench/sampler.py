"""Sampler benchmark: index sampling, padded batches, the plain-Python baseline, peak memory of SW on 20M events.

    python bench/sampler.py [--quick]

Prints the figures and writes bench/results/sampler.json. Goals (issue "sampling engine"): >= 5M triples/s on one
core, >= 1M padded pairs/s at L = 50, >= 100x a plain Python loop, <= 2 GiB peak RSS for one SW epoch on 20M events.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, report, write_results  # noqa: E402

from genpas.augment import EpochSampler, PairDistribution, make_strategy  # noqa: E402
from genpas.augment.batches import pair_batch  # noqa: E402
from genpas.data.synth import SynthConfig, synthesize_store  # noqa: E402


def plain_python_sw(lengths, size: int, seed: int = 0):
    """The baseline: enumerate every Slide-Window pair in a Python list, then sample from it."""
    pairs = []
    for u, n in enumerate(lengths):
        for k in range(2, n + 1):
            for j in range(1, k):
                pairs.append((u, k, j))
    rnd = random.Random(seed)
    return [pairs[rnd.randrange(len(pairs))] for _ in range(size)]


def peak_rss_sw_epoch(users: int, mean_length: float) -> dict:
    """In a fresh process: build a synthetic store, then sample one SW epoch in chunks; report peak RSS."""
    code = f"""
import resource, time, json
from genpas.augment import EpochSampler, PairDistribution, make_strategy
from genpas.data.synth import SynthConfig, synthesize_store
store = synthesize_store(SynthConfig(users={users}, items=50_000, mean_length={mean_length}, seed=0))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
sampler = EpochSampler(PairDistribution(store.lengths, make_strategy("sw")), seed=0)
drawn = 0
for u, k, j in sampler.chunks(0):
    drawn += len(u)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(interactions=int(store.num_interactions), pairs=drawn, seconds=seconds,
                      rss_after_store_mb=before, peak_rss_mb=peak)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few seconds")
    args = parser.parse_args()
    results: dict = {}

    store = synthesize_store(SynthConfig(users=20_000, items=5_000, mean_length=50, seed=1))
    n_draws = 1_000_000 if args.quick else 5_000_000
    strategies = {"mt": make_strategy("mt"), "sw": make_strategy("sw"), "lt": make_strategy("lt"),
                  "genpas_0.5_2_-1": make_strategy("genpas", 0.5, 2.0, -1.0)}
    for name, strategy in strategies.items():
        dist = PairDistribution(store.lengths, strategy)
        rng = np.random.default_rng(0)
        sec = best_of(lambda: dist.sample(n_draws, rng))
        results[f"triples_per_s_{name}"] = n_draws / sec
    dist = PairDistribution(store.lengths, make_strategy("sw"))
    u, k, j = dist.sample(200_000, np.random.default_rng(1))
    sec = best_of(lambda: pair_batch(store, u, k, j, max_len=50))
    results["padded_pairs_per_s_L50"] = 200_000 / sec

    # Baseline data shaped like MovieLens-100k (943 users, ~106 events each); output = one epoch (the MT pair count).
    small = synthesize_store(SynthConfig(users=300 if args.quick else 943, items=1682, mean_length=106, min_length=20, seed=2))
    size = int((small.lengths - 1).sum())
    t0 = time.perf_counter()
    plain_python_sw(small.lengths.tolist(), size)
    plain = time.perf_counter() - t0
    ours = best_of(lambda: EpochSampler(PairDistribution(small.lengths, make_strategy("sw")), size=size).epoch(0))
    results["baseline_pairs_out"] = size
    results["plain_python_seconds"] = plain
    results["ours_seconds"] = ours
    results["speedup_vs_python"] = plain / ours

    users = 10_000 if args.quick else 100_000
    results["sw_epoch_memory"] = peak_rss_sw_epoch(users, 200.0)
    results["goals"] = {"triples_per_s": 5e6, "padded_pairs_per_s_L50": 1e6, "speedup_vs_python": 100,
                        "peak_rss_mb": 2048}
    report(write_results("sampler" + ("_quick" if args.quick else ""), results), results)


if __name__ == "__main__":
    main()
