"""Analysis benchmark: KL per configuration and over a grid, and the generalization measures, on a 1M log.

    python bench/analysis.py [--quick]

Goals (issue "analysis"): one KL in <= 10 ms after a set-up linear in the data, a 150-configuration grid in <= 2 s,
alignment/discrimination in < 5 s on a MovieLens-1M-sized log.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, report, write_results  # noqa: E402

from genpas.analysis.generalization import generalization  # noqa: E402
from genpas.analysis.screening import KLScreen  # noqa: E402
from genpas.augment import PairDistribution, genpas  # noqa: E402
from genpas.data.split import leave_one_out  # noqa: E402
from genpas.data.synth import SynthConfig, synthesize_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    users = 1500 if args.quick else 6040  # MovieLens-1M: 6,040 users, 3,706 items, ~1M ratings
    store = synthesize_store(SynthConfig(users=users, items=3706, mean_length=165, min_length=20, seed=0))
    split = leave_one_out(store)
    results = {"interactions": int(split.train.num_interactions)}

    t0 = time.perf_counter()
    screen = KLScreen(split)
    results["setup_seconds"] = time.perf_counter() - t0
    def one_kl():
        screen._memo.clear()  # measure a real computation, not a memo hit
        return screen.kl(genpas(1.3, 0.7, 0.0))
    results["kl_ms_per_config"] = 1000 * best_of(one_kl, repeat=5)

    grid = list(itertools.product((0, 0.5, 1, 1.5, 2), (0, 0.5, 1, 2, 4, math.inf), (-math.inf, -2, -1, 0, 1)))
    def run_grid():
        fresh = KLScreen(split, analyzer=screen.analyzer)  # no memo carried over between repeats
        return [fresh.kl(genpas(*abg)) for abg in grid]
    results["grid_configs"] = len(grid)
    results["grid_seconds"] = best_of(run_grid, repeat=3)

    analyzer = screen.analyzer
    dist = PairDistribution(split.train.lengths, genpas(1, 1, -1))
    t0 = time.perf_counter()
    gen = generalization(analyzer, dist, split.inputs("valid"), store.items, max_len=50, samples=8)
    results["generalization_seconds"] = time.perf_counter() - t0
    results["generalization"] = gen
    results["goals"] = {"kl_ms_per_config": 10, "grid_seconds": 2, "generalization_seconds": 5}
    report(write_results("analysis" + ("_quick" if args.quick else ""), results), results)


if __name__ == "__main__":
    main()
