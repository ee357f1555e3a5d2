"""`make bench`: run the benchmark scripts and gather their headline figures in bench/results/summary.json (+ .md).

    python bench/run_all.py [--quick] [--budget-minutes 10] [--seeds 0] [--skip-recbole] [--skip-scale]
                            [--ml1m-minutes 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine, write_results  # noqa: E402

HERE = Path(__file__).resolve().parent


def run_script(script: str, quick: bool, extra: tuple = ()) -> dict:
    """Run one benchmark script (its output streams through) and read the JSON it reports on its last line."""
    args = [sys.executable, str(HERE / script)] + (["--quick"] if quick else []) + list(extra)
    proc = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True)
    print(proc.stdout, end="")
    last = proc.stdout.strip().splitlines()[-1]
    if not last.startswith("wrote "):
        raise SystemExit(f"{script}: expected a last line 'wrote PATH', got {last!r}")
    return json.loads(Path(last[len("wrote "):]).read_text())


def targets_per_s(training: dict) -> dict:
    """Training targets per second of SASRec-MT packed epochs, device -> figure: this run's device at the default
    precision (and with --precision bf16), plus every accelerator measured before (bench/results/training_<device>*.json,
    labelled by file, e.g. cuda_h100)."""
    out = {}
    cases = training["cases"]
    for key, label in (("mt_packed", training["device"]), ("mt_packed_bf16", training["device"] + "_bf16")):
        if key in cases:
            out[label] = cases[key]["targets"] / cases[key]["epoch_seconds"]
    for path in sorted(RESULTS.glob("training_cuda*.json")):
        if path.stem.endswith("_quick"):
            continue
        case = json.loads(path.read_text())["cases"].get("mt_packed")
        if case:
            out[path.stem[len("training_"):]] = case["targets"] / case["epoch_seconds"]
    return out


def goals(s: dict) -> dict:
    """Each goal of the benchmark issue: the figure, the goal, and whether it is met."""
    checks = {
        "sampler_speedup_vs_python": (s["sampler_speedup_vs_python"], ">= 100", lambda v: v >= 100),
        "genpas_packed_over_mt": (s["genpas_packed_over_mt"], "<= 1.5", lambda v: v <= 1.5),
        "sw_peak_rss_mb_20m": (s["sw_peak_rss_mb_20m"], "<= 2048", lambda v: v <= 2048),
        "kl_ms_per_config_1m": (s["kl_ms_per_config_1m"], "<= 10", lambda v: v <= 10),
        "mt_packed_epoch_seconds_cpu_fastest": (  # the default or --precision bf16, whichever is faster
            min(v for v in (s["epoch_seconds"]["mt"], s["epoch_seconds"].get("mt_bf16")) if v is not None)
            if s["training_device"] == "cpu" else None, "<= 4.3", lambda v: v <= 4.3),
    }
    if "time_to_quality_s" in s:
        checks["time_to_quality_s_mt_cpu"] = (s["time_to_quality_s"].get("mt"), "<= 60", lambda v: v <= 60)
    if "recbole" in s:
        checks["epoch_speedup_vs_recbole"] = (s["epoch_speedup_vs_recbole"], ">= 20", lambda v: v >= 20)
        checks["mt_test_ndcg@10_minus_recbole"] = (s["mt_test_ndcg@10"] - s["recbole"]["test_ndcg@10"], ">= -0.002",
                                                   lambda v: v >= -0.002)
    return {name: {"value": value, "goal": goal, "met": None if value is None else bool(test(value))}
            for name, (value, goal, test) in checks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget-minutes", default="10", help="training budget of each side of the RecBole run")
    parser.add_argument("--seeds", default="0", help="seeds of the RecBole comparison, e.g. 0,1,2")
    parser.add_argument("--skip-recbole", action="store_true", help="no RecBole comparison (no venv is made)")
    parser.add_argument("--skip-scale", action="store_true", help="no data-at-scale benchmark (bench/scale.py: "
                        "100M interactions, about an hour on 2 cores)")
    parser.add_argument("--ml1m-minutes", default="10", help="time to quality: minutes of the bounded ML-1M run "
                        "(0: none)")
    parser.add_argument("--from-results", action="store_true",
                        help="run nothing: rebuild the summary from the JSON files already in bench/results (e.g. "
                             "after rerunning one script on a quiet machine)")
    args = parser.parse_args()
    if args.from_results:
        suffix = "_quick" if args.quick else ""

        def run(script, quick, extra=()):  # read the script's last results instead of running it
            name = {"training.py": "training_cpu", "time_to_quality.py": "time_to_quality_cpu"}.get(script, script[:-3])
            if "--ml1m-minutes" in extra:
                name += "_ml1m"
            path = RESULTS / f"{name}{'' if script == 'pruning_backtest.py' else suffix}.json"  # one replay, quick or not
            if not path.exists():
                raise SystemExit(f"{path}: no results; run `python bench/{script}` first")
            return json.loads(path.read_text())
    else:
        run = run_script
    sampler = run("sampler.py", args.quick)
    analysis = run("analysis.py", args.quick)
    training = run("training.py", args.quick)
    quality = run("time_to_quality.py", args.quick)
    if not args.quick and float(args.ml1m_minutes) > 0:
        ml1m = ("--ml1m-minutes", args.ml1m_minutes)
        if not args.from_results or (RESULTS / "time_to_quality_cpu_ml1m.json").exists():
            quality |= run("time_to_quality.py", False, ml1m)
    serving = run("recommend.py", args.quick)
    pruning = run("pruning_backtest.py", args.quick)
    scale = None if args.skip_scale else run("scale.py", args.quick)
    versus = None if args.skip_recbole else run("vs_recbole.py", args.quick,
                                                ("--budget-minutes", args.budget_minutes, "--seeds", args.seeds))
    cases = training["cases"]
    summary = {
        "sampler_speedup_vs_python": sampler["speedup_vs_python"],
        "triples_per_s": {k[len("triples_per_s_"):]: v for k, v in sampler.items() if k.startswith("triples_per_s_")},
        "padded_pairs_per_s_L50": sampler["padded_pairs_per_s_L50"],
        "sw_peak_rss_mb_20m": sampler["sw_epoch_memory"]["peak_rss_mb"],
        "sw_interactions": sampler["sw_epoch_memory"]["interactions"],
        "kl_ms_per_config_1m": analysis["kl_ms_per_config"],
        "kl_grid_seconds_150": analysis["grid_seconds"],
        "generalization_seconds_1m": analysis["generalization_seconds"],
        "epoch_seconds": {
            "mt": cases.get("mt_packed", {}).get("epoch_seconds"),
            "mt_bf16": cases.get("mt_packed_bf16", {}).get("epoch_seconds"),
            "hstu_mt": cases.get("hstu_mt_packed", {}).get("epoch_seconds"),
            "mt_pairs": cases.get("mt_pairs", {}).get("epoch_seconds"),
            "genpas_packed": cases.get("genpas_packed", {}).get("epoch_seconds"),
            "genpas_pairs": cases.get("genpas_pairs", {}).get("epoch_seconds"),
            "sw_packed": cases.get("sw_packed", {}).get("epoch_seconds"),
        },
        "genpas_packed_over_mt": training.get("genpas_packed_over_mt"),
        "mt_bf16_speedup": training.get("mt_bf16_speedup"),
        "training_device": training["device"],
        "targets_per_s": targets_per_s(training),
        "time_to_quality_s": quality["time_to_quality_s"],
        **({"time_to_quality_s_ml1m_bounded": quality["time_to_quality_s_ml1m_bounded"]}
           if "time_to_quality_s_ml1m_bounded" in quality else {}),
        "recommend_users_per_s": {p["data"]: p["users_per_s"] for p in serving["passes"] if "users_per_s" in p},
        "pruning_backtest": {k: pruning["rules"][next(iter(pruning["rules"]))][k]  # the default rule's replay
                             for k in ("runs", "underestimated", "stopped", "runs_in_searches", "share_saved")},
        "quick": args.quick,
    }
    if scale is not None:
        size = "100m" if scale["interactions_target"] >= 100_000_000 else f"{scale['interactions_target'] // 10**6}m"
        summary[f"prepare_{size}"] = {k: v for k, v in scale["prepare"].items() if k != "counts"}
        summary[f"pairs_{scale['pairs'] // 10**6}m_seconds"] = scale["pairs_seconds"]
        summary["mmap_sampler_rss_mb"] = scale["mmap_sampler"]["peak_rss_mb"]  # mapped store pages included
        summary["mmap_sampler_private_mb"] = scale["mmap_sampler"].get("anon_rss_mb")
        summary["mmap_sampler_triples_per_s"] = scale["mmap_sampler"]["triples_per_s"]
    if versus is not None:
        summary["mt_test_ndcg@10"] = versus["genpas"]["test_ndcg@10"]
        summary["recbole"] = {"epoch_seconds": versus["recbole"]["epoch_seconds"],
                              "test_ndcg@10": versus["recbole"]["test_ndcg@10"]}
        summary["mt_epoch_seconds_vs_recbole"] = versus["genpas"]["epoch_seconds"]
        summary["epoch_speedup_vs_recbole"] = versus["epoch_speedup"]
        summary["budget_minutes_vs_recbole"] = versus["budget_minutes"]
        summary["seeds_vs_recbole"] = versus["seeds"]
    summary["goals"] = goals(summary)
    path = write_results("summary", summary)
    lines = ["| figure | value |", "|---|---|"]
    for key, value in summary.items():
        if key == "goals":
            continue
        lines.append(f"| {key} | {json.dumps(value) if isinstance(value, dict) else value} |")
    lines.append(f"| machine | {json.dumps(machine())} |")
    lines += ["", "| goal | value | target | met |", "|---|---|---|---|"]
    for name, g in summary["goals"].items():
        lines.append(f"| {name} | {g['value']} | {g['goal']} | {g['met']} |")
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
