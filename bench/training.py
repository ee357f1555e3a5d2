"""Training-speed benchmark: seconds per epoch of SASRec under MT, SW and GenPAS, packed and pairs, on ml-100k.

    python bench/training.py [--quick] [--device auto|cpu|cuda] [--full]

Cases run at the default precision (`auto`: float32 on a CPU, bf16 autocast on CUDA), and MT also with
`--precision bf16` (`mt_packed_bf16`), so that option's speed-up is measured within one run. Every strategy
trains the same model on epochs with the same number of target pairs (the Multi-Target count); the
figure is the wall time of the second epoch's training loop (the first warms caches and allocators). Pairs-mode
epochs (one row per pair, about ten times slower than packed on a CPU) are timed on a fifth of the epoch and scaled
up: their cost is linear in the number of pairs, and this keeps `make bench` within its half hour. `--full` also
trains exact MT with the default settings to early stopping and reports its test NDCG@10 and time.
Writes bench/results/training_<device>.json.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from genpas.search.compare import DEFAULT_GENPAS  # noqa: E402
from genpas.train.config import TrainConfig  # noqa: E402
from genpas.train.trainer import Trainer, load_split, pick_device  # noqa: E402

CASES = {
    "mt_packed": dict(strategy="mt", mode="packed"),
    "mt_packed_bf16": dict(strategy="mt", mode="packed", precision="bf16"),  # the opt-in bf16 autocast
    "mt_pairs": dict(strategy="mt", mode="pairs"),
    "sw_packed": dict(strategy="sw", mode="packed"),
    "hstu_mt_packed": dict(strategy="mt", mode="packed", model="hstu"),
    "genpas_packed": dict(strategy="genpas", alpha=DEFAULT_GENPAS[0], beta=DEFAULT_GENPAS[1], gamma=DEFAULT_GENPAS[2],
                          mode="packed"),
    "genpas_pairs": dict(strategy="genpas", alpha=DEFAULT_GENPAS[0], beta=DEFAULT_GENPAS[1], gamma=DEFAULT_GENPAS[2],
                         mode="pairs"),
}


PAIRS_SHARE = 0.2


def epoch_seconds(cfg: TrainConfig, split, share: float = 1.0) -> dict:
    """Seconds of the second epoch; with share < 1 the epoch is that share of the MT count, scaled back up."""
    if share < 1.0:
        mt_pairs = int((split.train.lengths - 1).clip(min=0).sum())
        cfg = TrainConfig(**{**cfg.to_dict(), "num_pairs": int(round(share * mt_pairs))})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), split=split)
        metrics = trainer.fit()
        rows = list(csv.DictReader(open(Path(tmp) / "log.csv")))
    last = rows[-1]
    seconds, targets = float(last["epoch_seconds"]) / share, int(round(int(last["targets"]) / share))
    return {"epoch_seconds": seconds, "targets": targets, "targets_per_s": targets / seconds,
            "steps_per_epoch": metrics["steps_per_epoch"], "draws_per_epoch": metrics["draws_per_epoch"],
            "precision": metrics["precision"], "timed_share_of_epoch": share}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer cases")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--full", action="store_true", help="also train exact MT to early stopping")
    args = parser.parse_args()
    device = pick_device(args.device)
    base = TrainConfig(device=str(device), progress=False, epochs=2, patience=100)
    split = load_split(base)
    results: dict = {"device": str(device), "cases": {}}
    for name, overrides in CASES.items():
        if args.quick and name not in ("mt_packed", "mt_packed_bf16", "genpas_packed"):
            continue
        if overrides.get("precision") == "bf16" and device.type not in ("cpu", "cuda"):
            continue  # bf16 autocast runs on CPUs and CUDA only
        cfg = TrainConfig(**{**base.to_dict(), **overrides})
        results["cases"][name] = epoch_seconds(cfg, split, PAIRS_SHARE if cfg.mode == "pairs" else 1.0)
        print(f"{name:16s} {results['cases'][name]}", flush=True)
    cases = results["cases"]
    if "mt_packed" in cases and "genpas_packed" in cases:
        results["genpas_packed_over_mt"] = cases["genpas_packed"]["epoch_seconds"] / cases["mt_packed"]["epoch_seconds"]
    if "mt_packed" in cases and "mt_packed_bf16" in cases:  # bf16 against the default precision, in one run
        results["mt_bf16_speedup"] = cases["mt_packed"]["epoch_seconds"] / cases["mt_packed_bf16"]["epoch_seconds"]
    if args.full:
        cfg = TrainConfig(device=str(device), progress=False)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            m = Trainer(cfg, Path(tmp), split=split).fit()
        results["mt_default"] = {"test": m["test"], "valid": m["valid"], "best_epoch": m["best_epoch"],
                                 "train_seconds": m["train_seconds"], "wall_seconds": time.perf_counter() - start}
        print(f"mt default: test ndcg@10 {m['test']['ndcg@10']:.4f} in {m['train_seconds']:.0f}s", flush=True)
    path = write_results(f"training_{device.type}" + ("_quick" if args.quick else ""), results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
