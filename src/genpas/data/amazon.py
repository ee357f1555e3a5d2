"""Amazon reviews, every dump: 2014/2018 review JSON lines (also the 2014 Python-literal files), 2023 JSONL, and the
ratings-only CSVs (user,item,rating,timestamp, no header), read into the canonical event table of readers.py."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import polars as pl

from genpas.data.readers import CANONICAL, Columns, _finish, _read_delimited, read_bytes
from genpas.errors import GenpasError

_AMAZON_KEYS = (  # (user, item, time, time divisor) per dump
    ("reviewerID", "asin", "unixReviewTime", 1.0),  # 2014 and 2018
    ("user_id", "parent_asin", "timestamp", 1000.0),  # 2023, milliseconds
)


def _amazon_keys(first: dict, cols: Columns | None) -> tuple[tuple[str, str, str], float] | None:
    """The (user, item, time) fields of a review record and the time's divisor to seconds: a dump's, with any column
    the user named (--user-col, --item-col, --time-col) in place of the dump's; a time field the user named is read
    as seconds. None where the first record lacks them."""
    default = Columns()
    named = {} if cols is None else {k: getattr(cols, k) for k in ("user", "item", "time")
                                     if getattr(cols, k) != getattr(default, k)}
    for user_key, item_key, time_key, divisor in _AMAZON_KEYS:
        keys = (named.get("user", user_key), named.get("item", item_key), named.get("time", time_key))
        if set(keys) <= set(first):
            return keys, divisor if keys[2] == time_key else 1.0
    return None


def read_amazon(path: Path, cols: Columns | None = None) -> pl.DataFrame:
    """2014/2018 review JSON lines (also the 2014 Python-literal files), 2023 JSONL, and ratings-only CSVs; `cols`:
    the review fields the user named instead of the dump's."""
    raw = read_bytes(path)
    if raw.lstrip()[:1] != b"{":  # ratings-only CSV: user,item,rating,timestamp, no header
        df = _read_delimited(raw, path, ",", has_header=False)
        if df.width != 4:
            raise GenpasError(f"{path}: line 1: expected 4 fields (user,item,rating,timestamp), found {df.width}")
        df = df.rename(dict(zip(df.columns, ["user", "item", "rating", "time"]))).select(CANONICAL)
        return _finish(df, path, first_line=1)
    first_line = raw.lstrip().split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    python_literals = first_line.startswith("{'")
    first = _parse_record(first_line, python_literals, path, 1)
    found = _amazon_keys(first, cols)
    if found is None:
        default = Columns()
        given = [f"--{k}-col {getattr(cols, k)}" for k in ("user", "item", "time")
                 if cols is not None and getattr(cols, k) != getattr(default, k)]
        named = f" or the fields named by {', '.join(given)}" if given else \
            " (name the fields of another log with --user-col, --item-col and --time-col)"
        raise GenpasError(
            f"{path}: line 1: no Amazon review fields (reviewerID/asin/unixReviewTime or "
            f"user_id/parent_asin/timestamp){named}; found {', '.join(sorted(first))}"
        )
    keys, divisor = found
    df = None if python_literals else _amazon_fast(raw, keys)
    if df is None:  # Python literals, or a problem the line-by-line reader can locate precisely
        df = _amazon_by_line(raw, path, keys, python_literals)
    return _finish(df.with_columns(pl.col("time") / divisor), path, first_line=1)


def _amazon_fast(raw: bytes, keys) -> pl.DataFrame | None:
    """polars' JSON-lines reader, materialising only the three fields; None where it cannot read the file cleanly
    (blank lines would shift line numbers in error messages, so those files take the line-by-line path too)."""
    if b"\n\n" in raw.strip() or b"\r" in raw:
        return None
    user_key, item_key, time_key = keys
    try:
        df = pl.read_ndjson(io.BytesIO(raw), schema={user_key: pl.Utf8, item_key: pl.Utf8, time_key: pl.Float64})
    except (pl.exceptions.PolarsError, ValueError):
        return None
    return df.select(pl.col(user_key).alias("user"), pl.col(item_key).alias("item"), pl.col(time_key).alias("time"))


def _parse_record(line: str, python_literals: bool, path: Path, line_no: int) -> dict:
    """One JSON object (or, for the 2014 dumps, one Python dict literal, parsed safely: never eval)."""
    try:
        record = ast.literal_eval(line) if python_literals else json.loads(line)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise GenpasError(f"{path}: line {line_no}: broken JSON record") from None
    if not isinstance(record, dict):
        raise GenpasError(f"{path}: line {line_no}: expected a JSON object, found {type(record).__name__}")
    return record


def _amazon_by_line(raw: bytes, path: Path, keys, python_literals: bool) -> pl.DataFrame:
    """Line by line, keeping only the three fields of each record; errors name the line."""
    user_key, item_key, time_key = keys
    users, items, times = [], [], []
    for line_no, line in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        record = _parse_record(line, python_literals, path, line_no)
        try:
            user, item, stamp = record[user_key], record[item_key], record[time_key]
        except KeyError as exc:
            raise GenpasError(f"{path}: line {line_no}: missing field {exc.args[0]!r}") from None
        if user is None or str(user).strip() == "" or item is None or str(item).strip() == "":
            raise GenpasError(f"{path}: line {line_no}: empty {'user' if not str(user or '').strip() else 'item'} id")
        try:
            times.append(float(stamp))
        except (TypeError, ValueError):
            raise GenpasError(f"{path}: line {line_no}: unparseable timestamp {stamp!r}") from None
        users.append(str(user))
        items.append(str(item))
    return pl.DataFrame({"user": users, "item": items, "time": times},
                        schema={"user": pl.Utf8, "item": pl.Utf8, "time": pl.Float64})


