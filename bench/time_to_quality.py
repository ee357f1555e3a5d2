"""Time to quality: seconds of training until validation NDCG@10 first reaches 98 % of that run's best.

    python bench/time_to_quality.py [--quick] [--device auto] [--threads N] [--precision P]
    python bench/time_to_quality.py --ml1m-minutes M [--threads N]     (the bounded ML-1M run alone)
    python bench/time_to_quality.py --from-runs DIR ...                 (finished run directories)

SASRec with Multi-Target and with the default GenPAS setting, default options (or the `--precision` given), trained
to early stopping on ml-100k. A run's best is its best validation NDCG@10 over the whole run, so the figure is measured
after the fact from the run's log: the training seconds (the epochs' training loops, validation excluded) summed up
to the first epoch at 98 % of the best, and the wall seconds up to the end of that epoch's validation.

`--ml1m-minutes M` runs SASRec-MT on ML-1M instead (configs/sasrec-ml1m.yaml, max length 200), bounded to M minutes of
training and labelled bounded: its best is the best within the budget, not a converged one; it writes
time_to_quality_<device>_ml1m.json.

`--from-runs DIR ...` measures finished run directories instead of training (a campaign's runs, e.g.
docs/results/ml-1m/runs/*; unfinished ones are skipped with a note): their log.csv and metrics.json give the same
figure for runs trained to convergence elsewhere, grouped by strategy, data, device, precision, threads and recipe
(learning rate and schedule); it
writes time_to_quality_runs_<data>.json.

`--quality Q` (with `--from-runs`) adds a fixed bar beside the run's own: the training seconds until validation
NDCG@10 first reaches Q (None where the run never does), the fair figure for recipes that converge to different bests
(a recipe that stops early at a low best has a short time to its own 98 %).

`--quick` bounds every run to 6 epochs (a smoke test of the script, not a figure to quote). Writes
bench/results/time_to_quality_<device>[_<precision>].json.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from genpas.search.compare import DEFAULT_GENPAS  # noqa: E402
from genpas.search.experiments import ended_by  # noqa: E402
from genpas.train.config import TrainConfig  # noqa: E402
from genpas.train.trainer import Trainer, pick_device  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARE = 0.98


def time_to_quality(rows: list[dict], share: float = SHARE, quality: float | None = None) -> dict:
    """From a run's log rows (epoch_seconds, valid_ndcg@10, optimizer_steps): the best validation NDCG@10 and the
    training seconds, steps and epochs until it first reached `share` of that best; with `quality`, also the seconds
    until it first reached that fixed NDCG@10 (None if it never did)."""
    scores = [float(r["valid_ndcg@10"]) for r in rows]
    best = max(scores)
    first = next(i for i, s in enumerate(scores) if s >= share * best)
    seconds = sum(float(r["epoch_seconds"]) for r in rows[: first + 1])
    result = {"best_valid_ndcg@10": best, "seconds": seconds, "epochs": first + 1,
              "optimizer_steps": int(rows[first]["optimizer_steps"]),
              "train_seconds_total": sum(float(r["epoch_seconds"]) for r in rows), "epochs_run": len(rows)}
    if quality is not None:
        reached = next((i for i, s in enumerate(scores) if s >= quality), None)
        result.update(quality=quality, seconds_to_quality=None if reached is None else
                      sum(float(r["epoch_seconds"]) for r in rows[: reached + 1]),
                      epochs_to_quality=None if reached is None else reached + 1)
    return result


def measure(cfg: TrainConfig, label: str) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, Path(tmp))
        marks: list[float] = []
        log = trainer._log

        def timed_log(row, writer):  # wall clock at the end of each epoch (after its validation)
            marks.append(time.perf_counter() - start)
            log(row, writer)

        trainer._log = timed_log
        metrics = trainer.fit()
        rows = list(csv.DictReader(open(Path(tmp) / "log.csv")))
    result = time_to_quality(rows)
    result["wall_seconds"] = marks[result["epochs"] - 1]
    result.update(test_ndcg10=metrics["test"]["ndcg@10"], precision=metrics.get("precision", "auto"),
                  device=metrics["device"],
                  bounded_minutes=cfg.time_budget_minutes, max_len=cfg.max_len, data=cfg.data)
    print(f"{label:14s} {result['seconds']:8.1f} s of training to {SHARE:.0%} of the best valid ndcg@10 "
          f"{result['best_valid_ndcg@10']:.4f} (epoch {result['epochs']} of {result['epochs_run']}, "
          f"{result['wall_seconds']:.1f} s wall with validation); test ndcg@10 {result['test_ndcg10']:.4f}", flush=True)
    return result


def from_runs(dirs: list[str], quality: float | None = None) -> dict:
    """Time to quality of finished run directories, per run (keyed by its path, relative to the repository when inside
    it) and per group of runs that measure the same thing (model, strategy, data, device, precision, threads, recipe:
    mean over the group's seeds). Unfinished and untrained (popularity) directories are skipped with a note; none
    usable is an error (exit 2)."""
    import json
    import statistics

    runs, groups = {}, {}
    for d in dict.fromkeys(Path(d).resolve() for d in dirs):  # each directory once, however it was written
        metrics_file, log_file = d / "metrics.json", d / "log.csv"
        try:
            rows = list(csv.DictReader(open(log_file))) if log_file.is_file() else []
            if not metrics_file.is_file() or not rows:
                raise ValueError("unfinished (no metrics.json)" if not metrics_file.is_file()
                                 else "no epochs in log.csv (untrained)")
            metrics = json.loads(metrics_file.read_text())
            result = time_to_quality(rows, quality=quality)
        except (ValueError, KeyError, OSError) as exc:  # json's decode error is a ValueError
            print(f"skipped {d}: {exc}", file=sys.stderr)
            continue
        cfg = metrics["config"]
        result.update(test_ndcg10=metrics["test"]["ndcg@10"], device=metrics["device"],
                      precision=metrics.get("precision", "auto"), threads=cfg.get("threads"),
                      stopped_by=ended_by(metrics), max_len=cfg["max_len"], data=cfg["data"],
                      model=cfg.get("model", "sasrec"), strategy=metrics["strategy"]["label"], seed=cfg["seed"],
                      lr=cfg.get("lr"),
                      cosine=cfg.get("cosine", False), epochs_max=cfg.get("epochs"))
        name = str(d.relative_to(ROOT)) if d.is_relative_to(ROOT) else str(d)  # portable keys for the repo's runs
        runs[name] = result
        result["recipe"] = f"lr {result['lr']}" + (f" cosine over {result['epochs_max']} epochs" if result["cosine"] else "")
        group = " / ".join(str(result[k]) for k in ("model", "strategy", "data", "device", "precision", "threads",
                                                      "recipe"))
        groups.setdefault(group, []).append(result["seconds"])
        print(f"{name:40s} seed {cfg['seed']}: {result['seconds']:8.1f} s of training to {SHARE:.0%} of the best "
              f"valid ndcg@10 {result['best_valid_ndcg@10']:.4f} (epoch {result['epochs']} of {result['epochs_run']}, "
              f"ended by {result['stopped_by']}); {group}", flush=True)
        if quality is not None:
            reached = result["seconds_to_quality"]
            print(f"{'':40s} to valid ndcg@10 {quality:.4f}: " + ("never reached" if reached is None else
                  f"{reached:.1f} s (epoch {result['epochs_to_quality']})"), flush=True)
    if not runs:
        print("no finished run directory among the ones given", file=sys.stderr)
        raise SystemExit(2)
    data = sorted({Path(r["data"]).name for r in runs.values()})
    return {"data": data, "share_of_best": SHARE, "quality": quality, "runs": runs,
            "group_keys": "strategy / data / device / precision / threads / recipe",
            "time_to_quality_s": {k: statistics.fmean(v) for k, v in groups.items()},
            "runs_per_group": {k: len(v) for k, v in groups.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 epochs per run: a smoke test, not a figure")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--ml1m-minutes", type=float, default=0.0,
                        help="run SASRec-MT on ML-1M for this many minutes of training instead (0: ml-100k)")
    parser.add_argument("--from-runs", nargs="+", metavar="DIR", help="measure finished run directories instead")
    parser.add_argument("--quality", type=float, default=None,
                        help="with --from-runs: also the seconds to this fixed validation NDCG@10")
    parser.add_argument("--name", default=None, help="with --from-runs: the results file's name (default: by data)")
    args = parser.parse_args()
    if args.quality is not None and not (args.from_runs and 0 < args.quality <= 1):
        parser.error("--quality takes a validation NDCG@10 in (0, 1] and needs --from-runs")
    if args.name is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", args.name):
        parser.error(f"--name {args.name!r} is a file name under bench/results/: letters, digits, '_', '.', '-'")
    if args.from_runs:
        results = from_runs(args.from_runs, args.quality)
        name = args.name or "time_to_quality_runs_" + "_".join(results["data"])
        print(f"wrote {write_results(name, results)}")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    base = dict(device=str(device), progress=False, precision=args.precision, **({"epochs": 6} if args.quick else {}))
    runs = {"mt": TrainConfig(strategy="mt", **base),
            "genpas": TrainConfig(strategy="genpas", alpha=DEFAULT_GENPAS[0], beta=DEFAULT_GENPAS[1],
                                  gamma=DEFAULT_GENPAS[2], **base)}
    results: dict = {"device": str(device), "precision": args.precision, "share_of_best": SHARE, "quick": args.quick,
                     "runs": {}}
    if args.ml1m_minutes > 0:  # the bounded figure under its own key and file, so no reader mistakes it for one
        values = TrainConfig.yaml_values(ROOT / "configs" / "sasrec-ml1m.yaml")
        cfg = TrainConfig.from_dict({**values, **base, "time_budget_minutes": args.ml1m_minutes})
        results["runs"]["ml-1m/mt (bounded)"] = measure(cfg, "ml-1m mt")
        results["time_to_quality_s_ml1m_bounded"] = {"mt": results["runs"]["ml-1m/mt (bounded)"]["seconds"],
                                                      "minutes": args.ml1m_minutes,
                                                      "threads": torch.get_num_threads()}
    else:
        for name, cfg in runs.items():
            results["runs"][f"ml-100k/{name}"] = measure(cfg, f"ml-100k {name}")
        results["time_to_quality_s"] = {name: results["runs"][f"ml-100k/{name}"]["seconds"] for name in runs}
    name = (f"time_to_quality_{device.type}" + ("" if args.precision == "auto" else f"_{args.precision}")
            + ("_ml1m" if args.ml1m_minutes > 0 else ""))
    path = write_results(name + ("_quick" if args.quick else ""), results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
