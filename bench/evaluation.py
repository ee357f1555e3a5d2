"""One full-ranking validation pass, users batched in order of input length (the default) and in user order.

    python bench/evaluation.py [--config YAML] [--threads N] [--repeats N]

A freshly initialised model of the config's size (default configs/sasrec-ml1m.yaml: SASRec at length 200 on ML-1M)
ranks every validation user's target over all items, once per order, `--repeats` times in alternation; the best time
of each order is reported, with the largest difference between the two orders' scores' metrics (they rank the same
inputs; only the batches' padding differs). Writes bench/results/evaluation_<config stem>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from genpas.train.build import build_model, load_split  # noqa: E402
from genpas.train.config import TrainConfig  # noqa: E402
from genpas.train.evaluate import evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "sasrec-ml1m.yaml")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = TrainConfig.for_model(TrainConfig.yaml_values(args.config), str(args.config))
    split = load_split(cfg)
    model, _ = build_model(cfg, split)
    lengths = split.inputs("valid").truncated(cfg.max_len).lengths
    seconds = {"by_length": [], "user_order": []}
    metrics = {}
    for _ in range(args.repeats):
        for name in seconds:
            start = time.perf_counter()
            metrics[name] = evaluate(model, split, "valid", cfg.max_len, exclude_history=cfg.exclude_history,
                                     batch_size=cfg.eval_batch_size, by_length=name == "by_length")
            seconds[name].append(time.perf_counter() - start)
    best = {name: min(v) for name, v in seconds.items()}
    keys = [k for k in metrics["by_length"] if k.startswith(("ndcg@", "recall@"))]
    diff = max(abs(metrics["by_length"][k] - metrics["user_order"][k]) for k in keys)
    result = {"config": str(args.config.name), "data": cfg.data, "model": cfg.model, "max_len": cfg.max_len,
              "users": int(len(lengths)), "mean_input_length": float(np.mean(lengths)), "threads": args.threads,
              "seconds": best, "speedup": best["user_order"] / best["by_length"],
              "largest_metric_difference": diff}
    print(f"{cfg.model} on {cfg.data}, length {cfg.max_len}, {len(lengths)} users (mean input {np.mean(lengths):.0f} "
          f"items), {args.threads} thread(s): by length {best['by_length']:.2f} s, user order "
          f"{best['user_order']:.2f} s ({result['speedup']:.2f}x); largest metric difference {diff:.2e}")
    print(f"wrote {write_results('evaluation_' + args.config.stem, result)}")


if __name__ == "__main__":
    main()
