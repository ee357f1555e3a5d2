"""`prepare`: a source log in, a store directory out, by an engine.

Every engine does the preprocessing of genpas.data.preprocess, rule for rule:
1. exact duplicates (same user, item and time) dropped, the first in source order kept;
2. the iterative k-core, to its fixed point;
3. users and items coded in order of first appearance (in source order) among the surviving events;
4. each user's events ordered by time, ties kept in source order.
The engine's part ends in an encoded event table (user code, item code, time, source row) on disk; the shared part
here turns it into the store arrays user range by user range, so no step holds more than `chunk_rows` events, and
writes the manifest last. Source order is the order of the files (sorted by path) and of the rows within each file.

Formats an engine scans lazily: csv, tsv, parquet (a file, a directory of them, or a glob). Any other format the
in-process readers know (MovieLens, Amazon, RecBole) is read in process and stored the same way.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from genpas.data.readers import FORMATS, _head, detect_format, sniff_separator, text_bytes
from genpas.data.store import ID_MAPS, sha256_file, time_array, write_manifest
from genpas.errors import GenpasError

log = logging.getLogger(__name__)
ENGINES = ("polars", "spark")
SCANNABLE = ("csv", "tsv", "parquet")


@dataclass(frozen=True)
class PrepareOptions:
    format: str | None = None  # None: from the file names (and content)
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    min_user_count: int = 0
    min_item_count: int = 0
    chunk_rows: int = 10_000_000  # the most events held in memory at once (a bucket of users, a range of the arrays)


@dataclass
class Encoded:
    """What an engine hands over: a parquet directory of (u, i, time, source order) with final codes, in store order
    across its part files (by name), the id maps, and the columns that order a user's events."""

    events: Path
    user_ids: np.ndarray
    item_ids: np.ndarray
    stats: dict = field(default_factory=dict)
    order: tuple[str, ...] = ("time", "row")


def source_files(source: str | Path) -> list[Path]:
    """A file, a directory (its csv/tsv/parquet files, recursively) or a glob; sorted by path."""
    text = str(Path(source).expanduser()) if not any(c in str(source) for c in "*?[") else str(source)
    path = Path(text)
    if path.is_file():
        return [path]
    if path.is_dir():
        if (path / "offsets.npy").is_file():  # a store's (a raw data folder may ship a manifest.json)
            raise GenpasError(f"{path}: a store that `genpas prepare` wrote, not interaction files; every command "
                              "takes it as --data as it is (to prepare again, give the files it was prepared from)")
        files = sorted(p for p in path.rglob("*") if p.is_file() and _stem_ext(p) in SCANNABLE)
        if not files:
            raise GenpasError(f"{path}: no .csv, .tsv or .parquet files in this directory")
        return files
    files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    if not files:
        raise GenpasError(f"{source}: no such file, directory or matching files")
    return files


def _stem_ext(path: Path) -> str:
    name = path.name.lower()
    name = name[:-3] if name.endswith(".gz") else name
    return name.rsplit(".", 1)[-1] if "." in name else ""


def source_format(files: list[Path], fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise GenpasError(f"--format: unknown {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    kinds = {detect_format(f, _head(f)) for f in files}
    if len(kinds) > 1:
        raise GenpasError(f"{files[0].parent}: files of several formats ({', '.join(sorted(kinds))}); "
                          "give one kind, or --format")
    return kinds.pop()


def source_label(files: list[Path]) -> str:
    """How errors name the source: the file, or its directory and the number of files."""
    return str(files[0]) if len(files) == 1 else f"{files[0].parent} ({len(files)} files)"


def separator(path: Path, fmt: str) -> str:
    """The delimiter of a csv/tsv file: tab for tsv, else the in-process readers' rule on its decompressed start."""
    if fmt == "tsv":
        return "\t"
    return sniff_separator(text_bytes(_head(path, 65536), path))


def fingerprint(files: list[Path]) -> list[dict]:
    return [{"path": str(f), "bytes": f.stat().st_size, "sha256": sha256_file(f)} for f in files]


def prepare(source: str | Path, out: Path, engine: str = "polars", options: PrepareOptions = PrepareOptions(),
            **engine_args) -> dict:
    """Prepare `source` into the store directory `out` (written under a temporary name, then renamed); returns the
    manifest's counts and stats with the seconds taken."""
    if engine not in ENGINES:
        raise GenpasError(f"--engine: unknown {engine!r}; choose one of {', '.join(ENGINES)}")
    for name in ("min_user_count", "min_item_count"):
        if getattr(options, name) < 0:
            raise GenpasError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(options, name)}")
    if options.chunk_rows < 1:
        raise GenpasError(f"--chunk-rows must be >= 1, got {options.chunk_rows}")
    start = time.perf_counter()
    from genpas.data import builtin

    if str(source) in builtin.BUILTIN:  # a built-in dataset: its file, read as RecBole atomic
        files, fmt = [builtin.dataset_dir(str(source)) / builtin.DATASETS[str(source)].inter], "recbole"
        options = PrepareOptions(**{**asdict(options), "user_col": "user_id", "item_col": "item_id",
                                    "time_col": "timestamp"})
    else:
        files = source_files(source)
        fmt = source_format(files, options.format)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out.parent))
    try:
        store_dir = work / "store"
        store_dir.mkdir()
        about = {"engine": engine if fmt in SCANNABLE else "in-process", "source": fingerprint(files),
                 "options": {k: v for k, v in asdict(options).items() if k != "chunk_rows"} | {"format": fmt}}
        if fmt not in SCANNABLE:
            counts = _prepare_in_process(files, fmt, options, store_dir, about)
        else:
            if engine == "polars":
                from genpas.engines.polars_engine import prepare_store

                try:
                    counts = prepare_store(files, fmt, options, work / "events", store_dir, about)
                except pl.exceptions.PolarsError as exc:  # a malformed file: polars names the problem, we the file
                    reason = " ".join(str(exc).split("\n\n")[0].split())
                    raise GenpasError(f"{source_label(files)}: cannot read it as {fmt} ({type(exc).__name__}: {reason})") from None
            else:
                from genpas.engines.spark_engine import encode_events

                encoded = encode_events(files, fmt, options, work / "events", **engine_args)
                counts = write_store(encoded, store_dir, options.chunk_rows, about)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(store_dir, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {**counts, "seconds": time.perf_counter() - start}


def _prepare_in_process(files, fmt, options, store_dir: Path, about: dict) -> dict:
    from genpas.data.preprocess import build_store
    from genpas.data.readers import Columns, read_events

    if len(files) > 1:
        raise GenpasError(f"format {fmt} is read in process, one file at a time; give one file")
    events = read_events(files[0], fmt, Columns(options.user_col, options.item_col, options.time_col))
    store = build_store(events, options.min_user_count, options.min_item_count, source=str(files[0]))
    _save_flat(store_dir, store.offsets, store.items, store.times, store.user_ids, store.item_ids)
    write_manifest(store_dir, store.num_users, store.num_items, store.num_interactions, store.stats, about)
    return {"users": store.num_users, "items": store.num_items, "interactions": store.num_interactions,
            "stats": store.stats}


def _save_flat(directory: Path, offsets, items, times, user_ids, item_ids) -> None:
    np.save(directory / "offsets.npy", np.asarray(offsets, dtype=np.int64))
    np.save(directory / "items.npy", np.asarray(items, dtype=np.int32))
    np.save(directory / "times.npy", time_array(times))
    _write_ids(directory, user_ids, item_ids)


def _write_ids(directory: Path, user_ids, item_ids) -> None:
    for (name, column), ids in zip(ID_MAPS.items(), (user_ids, item_ids)):
        pl.DataFrame({column: pl.Series(ids, dtype=pl.Utf8)}).write_parquet(directory / name)


def write_store(encoded: Encoded, directory: Path, chunk_rows: int, about: dict) -> dict:
    """The store arrays from the encoded events: Parquet parts that, taken in name order, hold the events in store
    order (by user code, then `encoded.order`); each part is copied in turn into the .npy files (memory: one part,
    read `chunk_rows` rows at a time). The order is checked as it is copied."""
    import pyarrow.parquet as pq

    files = sorted(encoded.events.glob("*.parquet"))
    events = pl.scan_parquet([str(f) for f in files])
    counts = events.group_by("u").len().collect(engine="streaming")
    num_users, num_items = len(encoded.user_ids), len(encoded.item_ids)
    lengths = np.zeros(num_users, dtype=np.int64)
    lengths[counts["u"].to_numpy()] = counts["len"].to_numpy()
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    total = int(offsets[-1])
    time_dtype = events.collect_schema()["time"]
    np.save(directory / "offsets.npy", offsets)
    items = np.lib.format.open_memmap(directory / "items.npy", mode="w+", dtype=np.int32, shape=(total,))
    times = np.lib.format.open_memmap(directory / "times.npy", mode="w+",
                                      dtype=np.int64 if time_dtype.is_integer() else np.float64, shape=(total,))
    at, last_u = 0, -1
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=min(chunk_rows, 1 << 22), columns=["u", "i", "time"]):
            u = batch.column("u").to_numpy()
            if len(u) == 0:
                continue
            if u[0] < last_u or np.any(np.diff(u) < 0):
                raise GenpasError(f"internal: {f.name} is not in user order")
            items[at : at + len(u)] = batch.column("i").to_numpy()
            times[at : at + len(u)] = batch.column("time").to_numpy()
            at, last_u = at + len(u), int(u[-1])
    if at != total:
        raise GenpasError(f"internal: copied {at} events, expected {total}")
    items.flush()
    times.flush()
    del items, times
    _write_ids(directory, encoded.user_ids, encoded.item_ids)
    write_manifest(directory, num_users, num_items, total, encoded.stats, about)
    return {"users": num_users, "items": num_items, "interactions": total, "stats": encoded.stats}
