"""The polars engine: lazy scans and the streaming engine, so a log larger than memory is prepared on one machine.

Each step reads the previous step's Parquet from disk and writes its own; what stays in memory is per user or per
item (counts, codes, id maps), never per event. Strings are replaced by integer codes in the first pass, so the
k-core rounds and the final sort move 28 bytes per event.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl

from genpas.engines.prepare import Encoded, PrepareOptions
from genpas.errors import GenpasError

log = logging.getLogger(__name__)
INTEGRAL = r"^[+-]?[0-9]+$"


def scan(files: list[Path], fmt: str, options: PrepareOptions) -> pl.LazyFrame:
    """(user Utf8, item Utf8, time raw, row UInt64) in source order, every file in turn."""
    cols = [options.user_col, options.item_col, options.time_col]
    frames = []
    for f in files:
        if fmt == "parquet":
            lf = pl.scan_parquet(f)
        else:
            lf = pl.scan_csv(f, separator="\t" if fmt == "tsv" else _separator(f), infer_schema=False,
                             quote_char='"')
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


def _separator(path: Path) -> str:
    with path.open("rb") as fh:
        first = fh.readline().decode("utf-8", "replace")
    return max([",", ";", "\t", "|"], key=first.count)


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
                      rows=pl.len()).collect(engine="streaming")
    if facts["integral"][0]:
        out = lf.with_columns(text.cast(pl.Int64, strict=False).alias("time"))
        return _checked(out, pl.col("time").is_null(), label, "is outside the int64 range")
    if facts["numbers"][0] > 0:
        out = lf.with_columns(text.cast(pl.Float64, strict=False).alias("time"))
        return _checked(out, pl.col("time").is_null() | pl.col("time").is_nan(), label)
    dates = text.str.to_datetime(strict=False, time_unit="ms").dt.epoch("ms").cast(pl.Float64) / 1000.0
    return _checked(lf.with_columns(dates.alias("time")), pl.col("time").is_null(), label)


def _checked(lf: pl.LazyFrame, bad: pl.Expr, label: str, what: str = "is unparseable") -> pl.LazyFrame:
    row = lf.select(pl.when(bad).then(pl.col("row")).min()).collect(engine="streaming").item()
    if row is not None:
        raise GenpasError(f"{label}: data row {row + 1}: the timestamp {what}")
    return lf


def check_ids(lf: pl.LazyFrame, label: str) -> None:
    for col in ("user", "item"):
        bad = pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")
        row = lf.select(pl.when(bad).then(pl.col("row")).min()).collect(engine="streaming").item()
        if row is not None:
            raise GenpasError(f"{label}: data row {row + 1}: empty {col} id")


def encode_events(files: list[Path], fmt: str, options: PrepareOptions, work: Path) -> Encoded:
    work.mkdir(parents=True, exist_ok=True)
    label = str(files[0]) if len(files) == 1 else f"{files[0].parent} ({len(files)} files)"
    raw = scan(files, fmt, options)
    check_ids(raw, label)
    raw = parse_time(raw, label)
    source_events = raw.select(pl.len()).collect(engine="streaming").item()
    if source_events == 0:
        raise GenpasError(f"{label}: no data rows (only a header?)")

    # 1. exact duplicates: keep the first of each (user, item, time) in source order
    deduped = raw.group_by("user", "item", "time").agg(pl.col("row").min())
    users = _first_appearance(deduped, "user")
    items = _first_appearance(deduped, "item")
    coded = (deduped.join(users.lazy().select("user", u0="code"), on="user")
             .join(items.lazy().select("item", i0="code"), on="item")
             .select("u0", "i0", "time", "row"))
    current = work / "round-0.parquet"
    coded.sink_parquet(current)
    stats = {"source_events": int(source_events)}
    kept = pl.scan_parquet(current).select(pl.len()).collect().item()
    stats["duplicates_dropped"] = int(source_events - kept)

    # 2. the iterative k-core on integer codes
    min_user, min_item = max(options.min_user_count, 1), max(options.min_item_count, 1)
    if options.min_user_count > 1 or options.min_item_count > 1:
        rounds, before = 0, kept
        while True:
            rounds += 1
            lf = pl.scan_parquet(current)
            good_u = lf.group_by("u0").len().filter(pl.col("len") >= min_user).select("u0")
            good_i = lf.group_by("i0").len().filter(pl.col("len") >= min_item).select("i0")
            nxt = work / f"round-{rounds}.parquet"
            lf.join(good_u, on="u0", how="semi").join(good_i, on="i0", how="semi").sink_parquet(nxt)
            after = pl.scan_parquet(nxt).select(pl.len()).collect().item()
            current.unlink()
            current = nxt
            if after == before:
                break
            before = after
        stats["kcore_rounds"] = rounds
        stats["kcore_dropped"] = int(kept - after)
        if after == 0:
            raise GenpasError(f"{label}: nothing left after the k-core filter (--min-user-count "
                              f"{options.min_user_count}, --min-item-count {options.min_item_count}); lower them")

    # 3. final codes: first appearance among the survivors; 4. the table the store writer sorts per user range
    survivors = pl.scan_parquet(current)
    final_u = _recode(survivors, "u0", "u")
    final_i = _recode(survivors, "i0", "i")
    out = work / "events"
    out.mkdir()
    (survivors.join(final_u.lazy(), on="u0").join(final_i.lazy(), on="i0")
     .select(pl.col("u").cast(pl.Int64), pl.col("i").cast(pl.Int32), "time", "row")
     .sink_parquet(out / "part-0.parquet"))
    user_ids = _ids(users, final_u, "u0", "u", "user")
    item_ids = _ids(items, final_i, "i0", "i", "item")
    current.unlink()
    return Encoded(out, user_ids, item_ids, stats)


def _first_appearance(events: pl.LazyFrame, col: str) -> pl.DataFrame:
    """Distinct values of `col` with codes 0.. in order of their first row (one row per user or item)."""
    return (events.group_by(col).agg(pl.col("row").min().alias("first")).sort("first")
            .with_row_index("code").collect(engine="streaming"))


def _recode(events: pl.LazyFrame, old: str, new: str) -> pl.DataFrame:
    return (events.group_by(old).agg(pl.col("row").min().alias("first")).sort("first")
            .with_row_index(new).select(old, new).collect(engine="streaming"))


def _ids(first_codes: pl.DataFrame, final: pl.DataFrame, old: str, new: str, col: str) -> np.ndarray:
    table = final.join(first_codes.select(col, pl.col("code").alias(old)), on=old).sort(new)
    return table[col].to_numpy()
