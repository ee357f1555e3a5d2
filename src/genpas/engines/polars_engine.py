"""The polars engine: lazy scans and the streaming engine, so a log larger than memory is prepared on one machine.

1. Streaming passes over the source check ids and timestamps and build the user and item tables (first row, in
   source order): memory per distinct user or item, not per event.
2. A streaming join replaces the strings by those integer codes and writes (u0, i0, time, row) to Parquet: 28 bytes
   an event, on disk.
3. Users are split into buckets (u0 mod B) of at most `chunk_rows` events. A user's events all lie in one bucket, so
   duplicates, user counts and each user's order are bucket-local; only item counts and item first appearances are
   global, and those are arrays of one entry per item. Each bucket is read, deduplicated and sorted in NumPy, and
   kept on disk; the k-core rounds re-read the buckets with the current user and item masks; the last pass writes
   every event straight to its place in the memory-mapped store arrays.
Peak memory is one bucket plus the per-user and per-item arrays.
"""

from __future__ import annotations

import logging
import mmap
from pathlib import Path

import numpy as np
import polars as pl

from genpas.data.readers import check_header, quote_char
from genpas.data.store import write_manifest
from genpas.data.timestamps import INTEGRAL, SLASHED_DATE, SLASHED_FIX
from genpas.engines.prepare import PrepareOptions, _write_ids, separator, source_label
from genpas.errors import GenpasError

log = logging.getLogger(__name__)


def scan(files: list[Path], fmt: str, options: PrepareOptions) -> pl.LazyFrame:
    """(user Utf8, item Utf8, time raw, row UInt64) in source order, every file in turn."""
    cols = [options.user_col, options.item_col, options.time_col]
    frames = []
    for f in files:
        if fmt == "parquet":
            lf = pl.scan_parquet(f)
        else:
            sep = separator(f, fmt)
            check_header(f, sep, cols)
            lf = pl.scan_csv(f, separator=sep, infer_schema=False, quote_char=quote_char(sep))  # as in process
        names = lf.collect_schema().names()
        missing = [c for c in cols if c not in names]
        if missing:
            raise GenpasError(f"{f}: no column {missing[0]!r}; columns are {', '.join(names)} "
                              "(choose with --user-col/--item-col/--time-col)")
        frames.append(lf.select(pl.col(options.user_col).cast(pl.Utf8).alias("user"),
                                pl.col(options.item_col).cast(pl.Utf8).alias("item"),
                                pl.col(options.time_col).alias("time")))
    schemas = {str(frame.collect_schema()["time"]) for frame in frames}
    if len(schemas) > 1:  # e.g. integers in one Parquet file, floats in another: read every file's times as text
        frames = [frame.with_columns(pl.col("time").cast(pl.Utf8)) for frame in frames]
    return pl.concat(frames, how="vertical").with_row_index("row")


def parse_time(lf: pl.LazyFrame, label: str) -> pl.LazyFrame:
    """The in-process rule (genpas.data.readers): integers exact as Int64, other numbers Float64, else dates;
    an unreadable value is an error naming its row."""
    dtype = lf.collect_schema()["time"]
    if dtype.is_integer():
        return lf.with_columns(pl.col("time").cast(pl.Int64))
    if dtype.is_numeric():
        expr = pl.col("time").cast(pl.Float64)
        return _checked(lf.with_columns(expr), pl.col("time").is_null() | pl.col("time").is_nan(), label)
    text = pl.col("time").cast(pl.Utf8).str.strip_chars()
    facts = lf.select(integral=text.str.contains(INTEGRAL).fill_null(False).all(),
                      numbers=text.cast(pl.Float64, strict=False).is_not_null().sum(),
                      slashed=pl.when(text.str.contains(SLASHED_DATE).fill_null(False)).then(pl.col("row")).min(),
                      rows=pl.len()).collect(engine="streaming")  # one pass over the source for all three
    if facts["integral"][0]:
        out = lf.with_columns(text.cast(pl.Int64, strict=False).alias("time"))
        return _checked(out, pl.col("time").is_null(), label, "is outside the int64 range")
    if facts["numbers"][0] > 0:
        out = lf.with_columns(text.cast(pl.Float64, strict=False).alias("time"))
        return _checked(out, pl.col("time").is_null() | pl.col("time").is_nan(), label)
    if facts["slashed"][0] is not None:
        _refuse(label, facts["slashed"][0], f"is a day/month date ({SLASHED_FIX})")
    dates = text.str.to_datetime(strict=False, time_unit="ms", time_zone="UTC").dt.epoch("ms").cast(pl.Float64) / 1e3
    return _checked(lf.with_columns(dates.alias("time")), pl.col("time").is_null(), label)


def _checked(lf: pl.LazyFrame, bad: pl.Expr, label: str, what: str = "is unparseable") -> pl.LazyFrame:
    row = lf.select(pl.when(bad).then(pl.col("row")).min()).collect(engine="streaming").item()
    if row is not None:
        _refuse(label, row, what)
    return lf


def _refuse(label: str, row: int, what: str) -> None:
    raise GenpasError(f"{label}: data row {row + 1}: the timestamp {what}")


def check_ids(lf: pl.LazyFrame, label: str) -> None:
    for col in ("user", "item"):
        bad = pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")
        row = lf.select(pl.when(bad).then(pl.col("row")).min()).collect(engine="streaming").item()
        if row is not None:
            raise GenpasError(f"{label}: data row {row + 1}: empty {col} id")


def prepare_store(files: list[Path], fmt: str, options: PrepareOptions, work: Path, store_dir: Path,
                  about: dict) -> dict:
    """Steps 1-3 of the module docstring; writes the store into `store_dir` (manifest last) and returns its counts."""
    work.mkdir(parents=True, exist_ok=True)
    label = source_label(files)
    raw = scan(files, fmt, options)
    check_ids(raw, label)
    raw = parse_time(raw, label)

    # 1-2. id tables and the coded events
    log.info("%s: checked ids and timestamps; building the user and item tables", label)
    users = _first_appearance(raw, "user")
    items = _first_appearance(raw, "item")
    source_events = int(users["len"].sum())
    if source_events == 0:
        raise GenpasError(f"{label}: no data rows (only a header?)")
    coded_path = work / "coded.parquet"
    (raw.join(users.lazy().select("user", u0="code"), on="user").join(items.lazy().select("item", i0="code"), on="item")
     .select(pl.col("u0").cast(pl.Int64), pl.col("i0").cast(pl.Int64), "time", pl.col("row").cast(pl.Int64))
     .sink_parquet(coded_path))
    num_u, num_i = users.height, items.height
    user_events = np.zeros(num_u, dtype=np.int64)
    user_events[users["code"].to_numpy()] = users["len"].to_numpy()
    buckets = _bucket_count(user_events, options.chunk_rows)
    log.info("%d events of %d users and %d items coded; %d bucket(s)", source_events, num_u, num_i, buckets)

    # 3a. buckets: deduplicate, order each user's events by (time, row), keep on disk
    bucket_files = []
    for b in range(buckets):
        part = (pl.scan_parquet(coded_path).filter(pl.col("u0") % buckets == b)
                .collect(engine="streaming"))
        u, i, t, r = (part[c].to_numpy() for c in ("u0", "i0", "time", "row"))
        del part
        order = np.lexsort((r, i, t, u))  # by user, time, item, row: duplicates adjacent, first one first
        u, i, t, r = u[order], i[order], t[order], r[order]
        dup = np.zeros(len(u), dtype=bool)
        dup[1:] = (u[1:] == u[:-1]) & (t[1:] == t[:-1]) & (i[1:] == i[:-1])
        keep = ~dup
        u, i, t, r = u[keep], i[keep], t[keep], r[keep]
        order = np.lexsort((r, t, u))  # a user's events by time, ties in source order
        path = work / f"bucket-{b}.npz"
        np.savez(path, u=u[order], i=i[order].astype(np.int32), t=t[order], r=r[order])
        bucket_files.append(path)
        log.info("bucket %d/%d deduplicated and ordered", b + 1, buckets)
    coded_path.unlink()

    # 3b. the k-core on masks of users and items
    keep_u, keep_i = np.ones(num_u, dtype=bool), np.ones(num_i, dtype=bool)
    stats = {"source_events": source_events}
    rounds = 0
    while True:
        rounds += 1
        u_count, i_count = np.zeros(num_u, dtype=np.int64), np.zeros(num_i, dtype=np.int64)
        for path in bucket_files:
            with np.load(path) as z:
                u, i = z["u"], z["i"]
                alive = keep_u[u] & keep_i[i]
                u_count += np.bincount(u[alive], minlength=num_u)
                i_count += np.bincount(i[alive], minlength=num_i)
        if rounds == 1:
            stats["duplicates_dropped"] = int(source_events - u_count.sum())
        if options.min_user_count <= 1 and options.min_item_count <= 1:
            break
        new_u = keep_u & (u_count >= max(options.min_user_count, 1))
        new_i = keep_i & (i_count >= max(options.min_item_count, 1))
        if (new_u == keep_u).all() and (new_i == keep_i).all():
            stats["kcore_rounds"] = rounds
            stats["kcore_dropped"] = int(source_events - stats["duplicates_dropped"] - u_count.sum())
            break
        keep_u, keep_i = new_u, new_i
        log.info("k-core round %d: %d events left", rounds, int(u_count.sum()))
    total = int(u_count.sum())
    if total == 0:
        raise GenpasError(f"{label}: nothing left after the k-core filter (--min-user-count "
                          f"{options.min_user_count}, --min-item-count {options.min_item_count}); lower them")

    # 3c. final codes (first appearance among the survivors), then every event to its place
    first_u = np.full(num_u, np.iinfo(np.int64).max)
    first_i = np.full(num_i, np.iinfo(np.int64).max)
    for path in bucket_files:
        with np.load(path) as z:
            alive = keep_u[z["u"]] & keep_i[z["i"]]
            np.minimum.at(first_u, z["u"][alive], z["r"][alive])
            np.minimum.at(first_i, z["i"][alive], z["r"][alive])
    u_order = np.argsort(np.where(u_count > 0, first_u, np.iinfo(np.int64).max), kind="stable")[: (u_count > 0).sum()]
    i_order = np.argsort(np.where(i_count > 0, first_i, np.iinfo(np.int64).max), kind="stable")[: (i_count > 0).sum()]
    u_code = np.full(num_u, -1, dtype=np.int64)
    u_code[u_order] = np.arange(len(u_order))
    i_code = np.full(num_i, -1, dtype=np.int64)
    i_code[i_order] = np.arange(len(i_order))
    offsets = np.concatenate([[0], np.cumsum(u_count[u_order])])
    np.save(store_dir / "offsets.npy", offsets)
    time_dtype = np.float64
    with np.load(bucket_files[0]) as z:
        time_dtype = z["t"].dtype
    items_out = np.lib.format.open_memmap(store_dir / "items.npy", mode="w+", dtype=np.int32, shape=(total,))
    times_out = np.lib.format.open_memmap(store_dir / "times.npy", mode="w+", dtype=time_dtype, shape=(total,))
    for path in bucket_files:
        with np.load(path) as z:
            u, i, t = z["u"], z["i"], z["t"]
        alive = keep_u[u] & keep_i[i]
        u, i, t = u[alive], i[alive], t[alive]
        fu = u_code[u]
        starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]])) if len(u) else np.zeros(0, dtype=np.int64)
        rank = np.arange(len(u)) - np.repeat(starts, np.diff(np.concatenate([starts, [len(u)]])))
        dest = offsets[fu] + rank
        items_out[dest] = i_code[i]
        times_out[dest] = t
        for array in (items_out, times_out):  # written pages leave the resident set
            array.flush()
            array._mmap.madvise(mmap.MADV_DONTNEED)
        path.unlink()
    del items_out, times_out
    _write_ids(store_dir, users.sort("code")["user"].to_numpy()[u_order], items.sort("code")["item"].to_numpy()[i_order])
    write_manifest(store_dir, len(u_order), len(i_order), total, stats, about)
    return {"users": len(u_order), "items": len(i_order), "interactions": total, "stats": stats}


def _bucket_count(user_events: np.ndarray, chunk_rows: int) -> int:
    """Buckets u mod B so that each holds about chunk_rows events at most (users spread evenly by their codes)."""
    return max(1, int(np.ceil(user_events.sum() / max(chunk_rows, 1))))


def _first_appearance(events: pl.LazyFrame, col: str) -> pl.DataFrame:
    """Distinct values of `col` with codes 0.. in order of their first row, and their event counts."""
    return (events.group_by(col).agg(pl.col("row").min().alias("first"), pl.len()).sort("first")
            .with_row_index("code").collect(engine="streaming"))
