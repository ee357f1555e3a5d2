"""Top-K selection and whole recommendation passes.

    python bench/recommend.py [--threads N] [--items N,N] [--batch N] [--repeats N] [--quick]

1. Selecting the top 10 of each row of a [batch, items] score matrix with ties broken by item code: a full stable
   sort of every row (the first version of `genpas recommend`) against `train.recommend.top_k` (the k-th best by
   topk, then only the k chosen sorted), on scores with many ties, for each catalogue size; the two must agree.
2. `recommend` for every user of ml-100k (SASRec 64 x 2, length 50, freshly initialised: the speed does not depend
   on training) and of ML-1M at length 200 (configs/sasrec-ml1m.yaml) when it is cached or fetchable: users per second.

Writes bench/results/recommend.json (`--quick`: ml-100k and 3,706 items only, one repeat, recommend_quick.json).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, report, write_results  # noqa: E402

from genpas.errors import GenpasError  # noqa: E402
from genpas.train.build import build_model, load_split  # noqa: E402
from genpas.train.config import TrainConfig  # noqa: E402
from genpas.train.recommend import recommend, top_k  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def selection(items: int, batch: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.integers(0, 1000, (batch, items)).astype(np.float32))  # ties in every row
    sort = torch.sort(scores, dim=1, descending=True, stable=True)
    index, _ = top_k(scores, 10)
    if not np.array_equal(index, sort.indices[:, :10].numpy()):
        raise SystemExit(f"top_k disagrees with the stable sort at {items} items")
    sort_s = best_of(lambda: torch.sort(scores, dim=1, descending=True, stable=True), repeats)
    topk_s = best_of(lambda: top_k(scores, 10), repeats)
    return {"items": items, "batch": batch, "stable_sort_ms": sort_s * 1e3, "top_k_ms": topk_s * 1e3,
            "speedup": sort_s / topk_s}


def whole_pass(cfg: TrainConfig, repeats: int) -> dict:
    split = load_split(cfg)
    torch.manual_seed(0)
    model, _ = build_model(cfg, split)
    users = np.arange(split.full.num_users)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        recs = recommend(model, split.full, users, cfg.max_len, 10)
        seconds.append(time.perf_counter() - started)
    return {"data": cfg.data, "max_len": cfg.max_len, "users": int(len(users)), "items": int(split.full.num_items),
            "seconds": min(seconds), "users_per_s": len(users) / min(seconds), "recommendations": recs.count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--items", default="3706,100000")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.items, args.repeats = "3706", 1
    torch.set_num_threads(args.threads)
    results: dict = {"threads": args.threads, "selection": [selection(int(n), args.batch, args.repeats)
                                                            for n in args.items.split(",")]}
    passes = [TrainConfig(data="ml-100k", progress=False)]
    if not args.quick:
        passes.append(TrainConfig.from_yaml(ROOT / "configs" / "sasrec-ml1m.yaml"))
    results["passes"] = []
    for cfg in passes:
        try:
            results["passes"].append(whole_pass(cfg, args.repeats))
        except GenpasError as exc:  # ML-1M not fetchable here: said, not hidden
            results["passes"].append({"data": cfg.data, "skipped": str(exc)})
    path = write_results("recommend_quick" if args.quick else "recommend", results)
    flat = {"threads": args.threads}
    for row in results["selection"]:
        flat[f"top10 of {row['items']:,} items, sort / top_k ms"] = f"{row['stable_sort_ms']:.1f} / {row['top_k_ms']:.1f}"
    for row in results["passes"]:
        flat[f"recommend {row['data']}"] = row.get("skipped") or f"{row['users_per_s']:,.0f} users/s ({row['seconds']:.2f} s)"
    report(path, flat)


if __name__ == "__main__":
    main()
