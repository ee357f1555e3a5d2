"""`genpas compare` from the ranks a run keeps against ranking its users anew from the checkpoints.

    python bench/compare.py [--run DIR --baseline DIR] [--threads N] [--resamples N]

Two finished runs that keep both their best checkpoint and their ranks.npz (default: the ML-1M GenPAS(0, 1, 1) runs
of seeds 0 and 1 committed under docs/results/ml-1m/runs) are compared twice, in this process: as they are (the
ranks are read) and from copies without ranks.npz (both checkpoints rank every test user again). The two results
must agree exactly. Writes bench/results/compare.json. Needs the ML-1M data (fetched on first use) for the second
pass; not part of `make bench`, whose scripts need no committed run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report, write_results  # noqa: E402

from genpas.train.paired import compare_runs  # noqa: E402

RUNS = Path(__file__).resolve().parent.parent / "docs" / "results" / "ml-1m" / "runs"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, default=RUNS / "genpas-269792fe8a")
    parser.add_argument("--baseline", type=Path, default=RUNS / "genpas-772f17663f")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resamples", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for run in (args.run, args.baseline):
        if not ((run / "ranks.npz").is_file() and (run / "best.safetensors").is_file()):
            sys.exit(f"error: {run} must hold both ranks.npz and best.safetensors")
    start = time.perf_counter()
    stored = compare_runs(args.run, args.baseline, resamples=args.resamples, device="cpu")
    from_ranks = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for run in (args.run, args.baseline):
            copy = Path(tmp) / run.name
            shutil.copytree(run, copy, ignore=shutil.ignore_patterns("ranks.npz", "last.pt", "tensorboard"))
            copies.append(copy)
        start = time.perf_counter()
        fresh = compare_runs(*copies, resamples=args.resamples, device="cpu")
        from_checkpoints = time.perf_counter() - start
    keys = ("users", "a", "b", "difference", "standard_error", "ci95", "a_better", "b_better", "equal")
    if any(stored[k] != fresh[k] for k in keys):
        sys.exit("error: the ranks kept and the ranks computed anew disagree")
    def shown(path: Path) -> str:  # relative to the repository where it lies inside it
        path = path.resolve()
        return str(path.relative_to(RUNS.parents[3])) if path.is_relative_to(RUNS.parents[3]) else str(path)

    results = {"run": shown(args.run), "baseline": shown(args.baseline), "users": stored["users"],
               "resamples": args.resamples, "threads": torch.get_num_threads(),
               "seconds_from_ranks_npz": from_ranks, "seconds_from_checkpoints": from_checkpoints,
               "speedup": from_checkpoints / from_ranks, "same_result": True}
    report(write_results("compare", results), results)


if __name__ == "__main__":
    main()
