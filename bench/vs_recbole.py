"""genpas SASRec-MT against RecBole 1.2.1's SASRec on ml-100k: same data, split, model size, wall-clock budget.

    python bench/vs_recbole.py [--budget-minutes 10] [--seeds 0] [--quick]

Both sides train the same model (64 wide, 2 layers, 2 heads, FFN 256, max length 50, dropout 0.2, full-softmax CE)
on the same leave-one-out split of the same ml-100k file (RecBole's own atomic file, which genpas' built-in ml-100k
is), each with its own defaults for batch size and learning rate, for the same wall-clock budget: no new epoch starts
once the budget is spent, the best validation epoch is restored and tested with full ranking. RecBole's full-ranking
evaluation never ranks a user's own history, so genpas is evaluated with --exclude-history here (and the figure
without it is reported beside). Both see the exact Multi-Target pairs: RecBole by prefix expansion (one sample per
pair), genpas by packed windows. RecBole runs in its own venv (bench/.venv-recbole, made on first use; see
recbole_worker.py for the work-arounds it needs). `--quick` runs one epoch on each side.

Writes bench/results/vs_recbole.json (vs_recbole_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from genpas.data.builtin import ml100k_dir  # noqa: E402
from genpas.train.config import TrainConfig  # noqa: E402
from genpas.train.trainer import Trainer, load_split  # noqa: E402

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-recbole"
REQUIREMENTS = ["torch==2.13.0", "recbole==1.2.1", "setuptools<81"]


def recbole_python() -> Path:
    python = VENV / "bin" / "python"
    marker = VENV / ".installed"
    if not marker.exists():
        print(f"creating {VENV} with {' '.join(REQUIREMENTS)} (once)", flush=True)
        venv.create(VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        *REQUIREMENTS], check=True)
        marker.write_text("\n".join(REQUIREMENTS) + "\n")
    return python


def run_recbole(seed: int, budget_s: float, max_epochs: int) -> dict:
    python = recbole_python()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:  # RecBole writes log/ and saved/ into its working directory
        proc = subprocess.run([str(python), str(HERE / "recbole_worker.py"), str(ml100k_dir().parent),
                               str(budget_s), str(seed), str(max_epochs)], cwd=cwd, stdout=subprocess.PIPE,
                              text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - start
    return result


def run_genpas(seed: int, budget_s: float, max_epochs: int, split) -> dict:
    cfg = TrainConfig(strategy="mt", mode="packed", dim=64, layers=2, heads=2, dropout=0.2, max_len=50, seed=seed,
                      epochs=max_epochs, time_budget_minutes=budget_s / 60, exclude_history=True, progress=False)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp), split=split)
        metrics = trainer.fit()
        rows = list(csv.DictReader(open(Path(tmp) / "log.csv")))
        trainer.cfg.exclude_history = False
        test_with_history = trainer.evaluate("test")
    seconds = [float(r["epoch_seconds"]) for r in rows]
    return {"seed": seed, "epochs": len(rows), "best_epoch": metrics["best_epoch"],
            "train_seconds": metrics["train_seconds"], "epoch_seconds": sum(seconds) / len(seconds),
            "targets_per_epoch": int(rows[-1]["targets"]), "batch_size": cfg.batch_size, "lr": cfg.lr,
            "valid": {k: v for k, v in metrics["valid"].items() if "@" in k},
            "test": {k: v for k, v in metrics["test"].items() if "@" in k},
            "test_history_kept": {k: v for k, v in test_with_history.items() if "@" in k},
            "wall_seconds": time.perf_counter() - start}


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=10.0)
    parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1,2")
    parser.add_argument("--quick", action="store_true", help="one epoch on each side")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    budget_s = 1e-9 if args.quick else args.budget_minutes * 60  # quick: the first epoch spends the budget
    max_epochs = 1 if args.quick else 200
    split = load_split(TrainConfig())
    ours, theirs = [], []
    for seed in seeds:
        theirs.append(run_recbole(seed, budget_s, max_epochs))
        print(f"recbole seed {seed}: {theirs[-1]['epoch_seconds']:.1f} s/epoch, test ndcg@10 "
              f"{theirs[-1]['test']['ndcg@10']:.4f} after {len(theirs[-1]['epochs'])} epochs", flush=True)
        ours.append(run_genpas(seed, budget_s, max_epochs, split))
        print(f"genpas  seed {seed}: {ours[-1]['epoch_seconds']:.1f} s/epoch, test ndcg@10 "
              f"{ours[-1]['test']['ndcg@10']:.4f} after {ours[-1]['epochs']} epochs", flush=True)
    results = {
        "budget_minutes": None if args.quick else args.budget_minutes, "seeds": seeds, "quick": args.quick,
        "genpas": {"epoch_seconds": mean(r["epoch_seconds"] for r in ours),
                   "test_ndcg@10": mean(r["test"]["ndcg@10"] for r in ours),
                   "test_recall@10": mean(r["test"]["recall@10"] for r in ours), "runs": ours},
        "recbole": {"epoch_seconds": mean(r["epoch_seconds"] for r in theirs),
                    "test_ndcg@10": mean(r["test"]["ndcg@10"] for r in theirs),
                    "test_recall@10": mean(r["test"]["recall@10"] for r in theirs), "runs": theirs},
    }
    results["epoch_speedup"] = results["recbole"]["epoch_seconds"] / results["genpas"]["epoch_seconds"]
    results["test_ndcg@10_difference"] = results["genpas"]["test_ndcg@10"] - results["recbole"]["test_ndcg@10"]
    path = write_results("vs_recbole" + ("_quick" if args.quick else ""), results)
    print(f"epoch speed-up {results['epoch_speedup']:.1f}x, test ndcg@10 genpas - recbole "
          f"{results['test_ndcg@10_difference']:+.4f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
