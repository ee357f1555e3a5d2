"""Pairs at scale: an epoch of GenPAS draws written as partitioned Parquet, on polars (one machine) or Spark.

Each partition is a contiguous range of users; it opens the store memory-mapped, takes its draws from
augment.partitioned.PartitionedEpoch (exact multinomial counts, per-user streams: the same pairs whatever the number
of partitions) and writes one Parquet file of rows

    user (string)  k, j (int32, 1-based positions)  input (list<string>: items j .. k-1, cut to the last max_len)
    target (string)

ordered by user code, then draw number. Ids are the original ones. The training prefix of each user is read in
place (no copy of the store): the leave-one-out split only shortens each sequence.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from genpas.augment import PairDistribution
from genpas.augment.partitioned import PartitionedEpoch, partition_count, user_ranges
from genpas.augment.strategy import Strategy
from genpas.data.split import training_lengths
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError

SCHEMA = pa.schema([("user", pa.string()), ("k", pa.int32()), ("j", pa.int32()), ("input", pa.list_(pa.string())),
                    ("target", pa.string())])


@dataclass(frozen=True)
class PairJob:
    """Everything a partition needs, small enough to ship to a Spark executor."""

    store: str  # the store directory (memory-mapped by each partition)
    strategy: Strategy
    split: str = "loo"
    size: int | None = None  # draws in the epoch (default: the Multi-Target pair count)
    seed: int = 0
    epoch: int = 0
    max_len: int | None = None

    def open(self):
        store = SequenceStore.load(Path(self.store), mmap=True, verify="sizes")
        lengths = training_lengths(store.lengths, self.split)
        return store, PartitionedEpoch(PairDistribution(lengths, self.strategy), self.size, self.seed, self.epoch)


def pair_table(store: SequenceStore, epoch: PartitionedEpoch, lo: int, hi: int, max_len: int | None) -> pa.Table:
    """The pairs of users lo .. hi-1 as an Arrow table (see the module docstring)."""
    u, k, j = epoch.draws(lo, hi)
    e = j if max_len is None else np.maximum(j, k - max_len)  # first input position kept
    base = store.offsets[u]
    lengths = k - e
    list_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    positions = np.repeat(base + e - 1 - list_offsets[:-1], lengths) + np.arange(list_offsets[-1])
    item_ids = pa.array(np.asarray(store.item_ids, dtype=object), type=pa.string())
    user_ids = pa.array(np.asarray(store.user_ids, dtype=object), type=pa.string())
    inputs = pa.LargeListArray.from_arrays(pa.array(list_offsets),
                                           item_ids.take(pa.array(np.asarray(store.items[positions], dtype=np.int64))))
    return pa.table({
        "user": user_ids.take(pa.array(u)),
        "k": pa.array(k.astype(np.int32)),
        "j": pa.array(j.astype(np.int32)),
        "input": inputs.cast(pa.list_(pa.string())),
        "target": item_ids.take(pa.array(np.asarray(store.items[base + k - 1], dtype=np.int64))),
    }, schema=SCHEMA)


def write_pairs(job: PairJob, out: Path, engine: str = "polars", partitions: int | None = None,
                master: str = "local[*]") -> dict:
    """Write the epoch's pairs under `out` (a new directory, renamed into place when complete)."""
    if engine not in ("polars", "spark"):
        raise GenpasError(f"--engine: unknown {engine!r}; choose polars or spark")
    start = time.perf_counter()
    store, epoch = job.open()
    parts = partition_count(partitions, store.num_interactions)
    ranges = user_ranges(training_lengths(store.lengths, job.split), parts)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".pairs-", dir=out.parent))
    try:
        if engine == "polars":  # one process, range after range: memory is one range's pairs
            for index, (lo, hi) in enumerate(ranges):
                pq.write_table(pair_table(store, epoch, lo, hi, job.max_len), tmp / f"part-{index:05d}.parquet")
        else:
            from genpas.engines.spark_engine import write_pairs_spark

            write_pairs_spark(job, ranges, tmp, master)
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in tmp.glob("*.parquet"))
        if rows != epoch.size:
            raise GenpasError(f"internal: wrote {rows} pairs, the epoch has {epoch.size}")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"pairs": epoch.size, "partitions": len(ranges), "engine": engine, "seconds": time.perf_counter() - start}
