"""`make bench`: run the benchmark scripts and gather their headline figures in bench/results/summary.json (+ .md).

    python bench/run_all.py [--quick]
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


def run(script: str, quick: bool) -> dict:
    """Run one benchmark script (its output streams through) and read the JSON it reports on its last line."""
    args = [sys.executable, str(HERE / script)] + (["--quick"] if quick else [])
    proc = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True)
    print(proc.stdout, end="")
    last = proc.stdout.strip().splitlines()[-1]
    if not last.startswith("wrote "):
        raise SystemExit(f"{script}: expected a last line 'wrote PATH', got {last!r}")
    return json.loads(Path(last[len("wrote "):]).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sampler = run("sampler.py", args.quick)
    analysis = run("analysis.py", args.quick)
    training = run("training.py", args.quick)
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
            "mt_pairs": cases.get("mt_pairs", {}).get("epoch_seconds"),
            "genpas_packed": cases.get("genpas_packed", {}).get("epoch_seconds"),
            "genpas_pairs": cases.get("genpas_pairs", {}).get("epoch_seconds"),
            "sw_packed": cases.get("sw_packed", {}).get("epoch_seconds"),
        },
        "training_device": training["device"],
        "quick": args.quick,
    }
    path = write_results("summary", summary)
    lines = ["| figure | value |", "|---|---|"]
    for key, value in summary.items():
        lines.append(f"| {key} | {json.dumps(value) if isinstance(value, dict) else value} |")
    lines.append(f"| machine | {json.dumps(machine())} |")
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
