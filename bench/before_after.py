"""Before and after, in one run on one machine: the quick training benchmark of an earlier commit, then today's.

    python bench/before_after.py --before 262109b

The earlier commit is checked out into a temporary git worktree and its own `bench/training.py --quick` runs with
its own sources first on the path (the same virtual environment, so the same torch and NumPy); then today's runs.
Figures that two runs on different days compare are at the mercy of the machine's load; these two share it.
Writes bench/results/before_after.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def quick_training(tree: Path) -> dict:
    """Run tree's bench/training.py --quick; return the cases it wrote."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    proc = subprocess.run([sys.executable, str(tree / "bench" / "training.py"), "--quick"], cwd=tree, env=env,
                          check=True, stdout=subprocess.PIPE, text=True)
    print(proc.stdout, end="", flush=True)
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(Path(last[len("wrote "):]).read_text())["cases"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="the earlier commit (e.g. the one an issue measured)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--verify", args.before + "^{commit}"], cwd=ROOT, check=True,
                            stdout=subprocess.PIPE, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), commit], cwd=ROOT, check=True)
        try:
            before = quick_training(tree)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)
    after = quick_training(ROOT)
    results = {"before_commit": commit, "before": before, "after": after,
               "mt_packed_speedup": before["mt_packed"]["epoch_seconds"] / after["mt_packed"]["epoch_seconds"]}
    if "mt_packed_bf16" in after:
        results["mt_packed_bf16_speedup"] = before["mt_packed"]["epoch_seconds"] / after["mt_packed_bf16"]["epoch_seconds"]
    for key in ("mt_packed_speedup", "mt_packed_bf16_speedup"):
        if key in results:
            print(f"{key:24s} {results[key]:.2f}x")
    path = write_results("before_after", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
