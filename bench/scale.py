"""Data at scale: prepare a synthetic log of 100M interactions with each engine, write 10M pairs with each, and
sample from the memory-mapped store.

    python bench/scale.py [--quick] [--interactions 100000000] [--pairs 10000000] [--skip-spark] [--keep DIR]

Every stage runs as its own process; its wall time and (for the processes genpas runs itself) peak resident memory,
read from the kernel's accounting of that process (`wait4`), are reported. Spark's executors run in a JVM child of
the driver, so for Spark only the time is reported. --quick: 2M interactions and 1M pairs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, report, write_results  # noqa: E402

GENPAS = [sys.executable, "-m", "genpas"]

SAMPLER = """
import sys, time, numpy as np
from genpas.augment import EpochSampler, PairDistribution, genpas
from genpas.data.split import training_lengths
from genpas.data.store import SequenceStore
store = SequenceStore.load(sys.argv[1], mmap=True)
dist = PairDistribution(training_lengths(store.lengths, "loo"), genpas(0.5, 0, 0))
sampler = EpochSampler(dist, seed=0, size=int(sys.argv[2]))
start = time.perf_counter(); drawn = 0; check = 0
for u, k, j in sampler.chunks(0):
    check += int(store.items[store.offsets[u] + k - 1].sum() % 7)  # touch the targets in the mapped store
    drawn += len(u)
seconds = time.perf_counter() - start
status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
mb = lambda key: int(status.get(key, "0 kB").split()[0]) / 1024  # noqa: E731
print(drawn, seconds, mb("RssAnon"), mb("RssFile"))
"""


def stage(args: list[str]) -> tuple[float, float, str]:
    """Run one process: (seconds, peak RSS in MB, stdout)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read()
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return seconds, usage.ru_maxrss / 1024.0, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--interactions", type=int, default=None)
    parser.add_argument("--pairs", type=int, default=None)
    parser.add_argument("--skip-spark", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="work directory to keep (default: a temporary one)")
    parser.add_argument("--stages", default="prepare,pairs,sampler",
                        help="stages to run; with --keep, a later call can rerun one and keep the other figures")
    args = parser.parse_args()
    n = args.interactions or (2_000_000 if args.quick else 100_000_000)
    pairs = args.pairs or (1_000_000 if args.quick else 10_000_000)
    work = args.keep or Path(tempfile.mkdtemp(prefix="genpas-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    users, items = max(1, n // 20), max(100, n // 500)
    stages = set(args.stages.split(","))
    name = "scale_quick" if args.quick else "scale"
    previous = RESULTS / f"{name}.json"
    results: dict = {"interactions_target": n, "pairs": pairs, "cores": os.cpu_count()}
    if stages != {"prepare", "pairs", "sampler"} and previous.exists():  # a partial rerun keeps the other figures
        import json

        old = json.loads(previous.read_text())
        results.update({k: v for k, v in old.items() if k != "machine"})
    try:
        data = work / "log.parquet"
        if not data.exists():
            s, rss, _ = stage(GENPAS + ["synth", "--users", str(users), "--items", str(items), "--mean-length", "20",
                                        "--out", str(data)])
            results["synth_seconds"] = s
        if "prepare" in stages:
            s, rss, text = stage(GENPAS + ["prepare", "--data", str(data), "--out", str(work / "store-polars"),
                                           "--overwrite", "--json"])
            results["prepare"] = {"polars_seconds": s, "polars_peak_rss_mb": rss, "counts": text.strip()[:200]}
            print(f"polars prepare: {s:.1f} s, peak RSS {rss:,.0f} MB")
        if "prepare" in stages and not args.skip_spark:
            s, _, _ = stage(GENPAS + ["prepare", "--engine", "spark", "--data", str(data), "--out",
                                      str(work / "store-spark"), "--overwrite", "--json"])
            results["prepare"]["spark_seconds"] = s
            print(f"spark prepare: {s:.1f} s")
            same = subprocess.run([sys.executable, "-c", SAME, str(work / "store-polars"), str(work / "store-spark")],
                                  capture_output=True, text=True)
            results["prepare"]["engines_identical"] = same.stdout.strip() == "same"
        if "pairs" in stages:
            results["pairs_seconds"] = {}
        for engine in ("polars",) + (() if args.skip_spark else ("spark",)) if "pairs" in stages else ():
            s, rss, _ = stage(GENPAS + ["pairs", "--engine", engine, "--data", str(work / "store-polars"),
                                        "--strategy", "genpas", "--alpha", "0.5", "--beta", "0", "--gamma", "0",
                                        "--max-len", "50", "--num-pairs", str(pairs), "--out",
                                        str(work / f"pairs-{engine}"), "--overwrite"])
            results["pairs_seconds"][engine] = s
            if engine == "polars":
                results["pairs_polars_peak_rss_mb"] = rss
            print(f"{engine} pairs: {s:.1f} s")
        if "sampler" in stages:
            s, rss, text = stage([sys.executable, "-c", SAMPLER, str(work / "store-polars"), str(pairs)])
            drawn, seconds, anon, mapped = text.split()
            results["mmap_sampler"] = {
                "triples": int(drawn), "triples_per_s": int(drawn) / float(seconds),
                "peak_rss_mb": rss,  # includes the store's pages mapped in: shared, reclaimable page cache
                "anon_rss_mb": float(anon), "file_rss_mb": float(mapped),  # at the end: private memory, mapped file
                "store_mb": sum(f.stat().st_size for f in (work / "store-polars").iterdir()) / 2**20}
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    path = write_results(name, results)
    report(path, results)


SAME = """
import sys, numpy as np
from genpas.data.store import SequenceStore
a, b = (SequenceStore.load(p, mmap=True) for p in sys.argv[1:3])
ok = all(np.array_equal(np.asarray(getattr(a, k)), np.asarray(getattr(b, k)))
         for k in ("offsets", "items", "times", "user_ids", "item_ids"))
print("same" if ok else "different")
"""

if __name__ == "__main__":
    main()
