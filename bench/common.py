"""Helpers shared by the benchmark scripts: machine description, timing, JSON output (atomic)."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import numpy as np
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def best_of(fn, repeat: int = 3) -> float:
    """The best wall time of `repeat` calls, in seconds (the least disturbed measurement)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def write_results(name: str, results: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"machine": machine(), **results}, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def report(path: Path, results: dict) -> None:
    """Print every figure, one per line, then where they were written."""
    for key, value in results.items():
        print(f"{key:30s} {value if isinstance(value, (dict, str)) else f'{value:,.4f}'}")
    print(f"wrote {path}")
