"""Grouping batches by input length (`--group-by-length G`): an epoch's padding and training time, against draw order.

    python bench/length_grouping.py [--config configs/sasrec-ml1m.yaml] [--groups 0,8,32] [--strategy mt]
                                    [--steps 0] [--rounds 1] [--threads 1]

For each G (0 = draw order, the default): the epoch's padding, counted exactly over all of its batches from the
draws alone (cells of the padded batches against cells holding an input item), and the training time of the epoch:
every step of it by default, or its number of steps times the mean time of `--steps` batches picked at random (then
the timed batches' mean cells stand beside the epoch's, since grouped widths vary widely). Each timed step is a full
training step (forward, loss, backward, clipping, AdamW) of the same freshly seeded model; the settings are timed in
interleaved rounds and each keeps its best round, so a drift of the machine's speed favours none.
Writes bench/results/length_grouping_<config stem>[_<strategy>].json.

    python bench/length_grouping.py --quality 0,1,2 [--strategy genpas:1,0.5,1] [--group 8]

trains the strategy on ml-100k (configs/one-thread.yaml: the defaults, one thread) in draw order and grouped by length
(G = --group), one run per seed and arm, to convergence on validation, and reports each seed's validation and test
NDCG@10 and the paired differences (grouped - draw order, mean and standard error). Runs in draw order are read from
or added to the ml-100k experiment store (docs/results/experiments-ml-100k), the grouped ones go to
docs/results/grouping-ml-100k; finished runs are reused. Writes bench/results/length_grouping_quality_ml-100k.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402
from cpu_options import Setup, Variant  # noqa: E402

from genpas.augment import make_strategy  # noqa: E402
from genpas.augment.batches import StreamConfig, TrainingStream  # noqa: E402
from genpas.augment.strategy import parse_bias  # noqa: E402
from genpas.train.build import load_split  # noqa: E402
from genpas.train.config import TrainConfig  # noqa: E402


def stream_for(cfg: TrainConfig, split, strategy, groups: int) -> TrainingStream:
    stream = TrainingStream(split.train, strategy, StreamConfig("packed", cfg.max_len, cfg.batch_size, cfg.seed,
                                                                times=cfg.model == "hstu", group_by_length=groups))
    stream.set_epoch(0)
    return stream


def padding(stream: TrainingStream) -> dict:
    """Cells of the epoch's padded batches and cells that hold an input item (counted from the draws)."""
    cells = used = 0
    for drawn, _ in stream.batch_draws():
        lengths = stream.input_lengths(drawn)
        cells += len(lengths) * int(lengths.max())
        used += int(lengths.sum())
    return {"batch_cells": cells, "input_cells": used, "padding_share": 1 - used / cells}


def quality(strategy, seeds: list[int], groups: int) -> None:
    from dataclasses import replace

    from genpas.search.run_store import RunStore

    base = TrainConfig.for_model(TrainConfig.yaml_values(Path("configs/one-thread.yaml")), "configs/one-thread.yaml")
    base = replace(base, progress=False, **{k: v for k, v in strategy.as_dict().items() if k != "user_weight"})
    arms = {"draw order": (RunStore(Path("docs/results/experiments-ml-100k")), base),
            f"grouped, G = {groups}": (RunStore(Path("docs/results/grouping-ml-100k")),
                                       replace(base, group_by_length=groups))}
    rows = {arm: [store.get(replace(cfg, seed=seed), base.strategy) for seed in seeds]
            for arm, (store, cfg) in arms.items()}
    results: dict = {"data": base.data, "strategy": strategy.label, "group_by_length": groups, "seeds": seeds,
                     "config": "configs/one-thread.yaml", "arms": {}, "paired_grouped_minus_draw_order": {}}
    for arm, records in rows.items():
        results["arms"][arm] = [{"seed": seed, "valid_ndcg@10": r["valid"]["ndcg@10"],
                                 "test_ndcg@10": r["test"]["ndcg@10"], "best_epoch": r["best_epoch"],
                                 "optimizer_steps": r["optimizer_steps"], "train_seconds": r["train_seconds"]}
                                for seed, r in zip(seeds, records)]
    plain, grouped = rows.values()
    for split in ("valid", "test"):
        diff = np.array([g[split]["ndcg@10"] - p[split]["ndcg@10"] for p, g in zip(plain, grouped)])
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None
        results["paired_grouped_minus_draw_order"][f"{split}_ndcg@10"] = {"mean": float(diff.mean()), "se": se}
    for arm, records in results["arms"].items():
        for r in records:
            print(f"{arm:16s} seed {r['seed']}: valid {r['valid_ndcg@10']:.4f}  test {r['test_ndcg@10']:.4f}  best "
                  f"epoch {r['best_epoch']}  {r['train_seconds']:.0f} s")
    for split, d in results["paired_grouped_minus_draw_order"].items():
        print(f"grouped - draw order, {split}: {d['mean']:+.4f}" + (f" ± {d['se']:.4f} (SE)" if d["se"] else ""))
    print(f"wrote {write_results('length_grouping_quality_ml-100k', results)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/sasrec-ml1m.yaml"))
    parser.add_argument("--groups", default="0,8,32", help="comma-separated G; 0 (draw order) is the reference")
    parser.add_argument("--strategy", default="mt", help="mt, or genpas:ALPHA,BETA,GAMMA")
    parser.add_argument("--steps", type=int, default=0, help="batches timed per setting, picked at random (default "
                        "0: every batch of the epoch, the unbiased estimate: grouped widths vary widely)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--quality", default=None, help="seeds: train on ml-100k in both arms instead of timing")
    parser.add_argument("--group", type=int, default=8, help="G of the grouped arm of --quality")
    args = parser.parse_args()
    groups = sorted({int(g) for g in args.groups.split(",") if g.strip()})  # 0, the reference, first
    if 0 not in groups or any(g < 0 for g in groups):
        parser.error("--groups must hold 0 (draw order, the reference) and no negative G")
    if args.strategy == "mt":
        strategy = make_strategy("mt")
    elif args.strategy.startswith("genpas:") and len(args.strategy[7:].split(",")) == 3:
        strategy = make_strategy("genpas", *(parse_bias(x) for x in args.strategy[7:].split(",")))
    else:
        parser.error(f"--strategy: expected mt or genpas:ALPHA,BETA,GAMMA, got {args.strategy!r}")
    if args.quality is not None:
        return quality(strategy, [int(x) for x in args.quality.split(",")], args.group)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig.for_model(TrainConfig.yaml_values(args.config), str(args.config))
    if cfg.mode != "packed" or cfg.num_pairs is not None or cfg.budget_pairs is not None or cfg.fixed_budget:
        parser.error(f"{args.config}: this bench times plain packed epochs; the config sets another mode or budget")
    split = load_split(cfg)
    results: dict = {"config": str(args.config), "data": cfg.data, "model": cfg.model, "max_len": cfg.max_len,
                     "batch_size": cfg.batch_size, "strategy": strategy.label, "threads": torch.get_num_threads(),
                     "timed_steps": args.steps, "rounds": args.rounds, "settings": {}}
    picked = None
    batches, variants = {}, {}
    for g in groups:
        stream = stream_for(cfg, split, strategy, g)
        if picked is None:
            rng = np.random.default_rng(0)
            every = args.steps <= 0 or args.steps >= len(stream)
            picked = set(range(len(stream))) if every else set(rng.choice(len(stream), size=args.steps,
                                                                          replace=False).tolist())
        batches[g] = [b for i, b in enumerate(stream) if i in picked]
        timed_cells = sum(b["inputs"].numel() for b in batches[g])  # against the epoch's: how fair the sample is
        results["settings"][g] = {"steps_per_epoch": len(stream), **padding(stream), "timed_steps": len(batches[g]),
                                  "timed_cells_per_step": timed_cells / len(batches[g]), "round_ms": []}
        variants[g] = Variant(cfg, split, Setup())
        variants[g].steps(batches[g][:2])  # warm-up
    for _ in range(args.rounds):
        for g in groups:
            results["settings"][g]["round_ms"].append(variants[g].steps(batches[g]) / len(batches[g]) * 1e3)
    reference = None
    for g in groups:
        r = results["settings"][g]
        r["ms_per_step"] = min(r["round_ms"])
        r["epoch_seconds_estimate"] = r["ms_per_step"] * r["steps_per_epoch"] / 1e3  # exact when every step is timed
        r["epoch_cells_per_step"] = r["batch_cells"] / r["steps_per_epoch"]
        reference = reference or r["epoch_seconds_estimate"]
        r["speedup_over_draw_order"] = reference / r["epoch_seconds_estimate"]
        print(f"G={g:<4d} padding {r['padding_share']:6.1%}  {r['ms_per_step']:8.1f} ms/step  epoch about "
              f"{r['epoch_seconds_estimate']:7.1f} s  x{r['speedup_over_draw_order']:.2f}  (rounds "
              f"{', '.join(f'{x:.1f}' for x in r['round_ms'])})", flush=True)
    suffix = "" if args.strategy == "mt" else "_" + args.strategy.replace(":", "-").replace(",", "_")
    path = write_results(f"length_grouping_{args.config.stem}{suffix}", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
