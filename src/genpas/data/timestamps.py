"""Timestamps of an event table: one column of any readable kind in, exact and comparable values out.

Integers stay exact (Int64); other numbers become Float64; ISO-like date strings, dates and datetimes become seconds
since the epoch. A value that cannot be read, is missing, or is not finite is an error naming its file and line:
an event without a time has no place in its user's order.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from genpas.errors import GenpasError

INTEGRAL = r"^[+-]?[0-9]+$"  # a whole number of any length: exact as Int64 where it fits
# Dates like 01/02/2020 (or 01.02.2020, 01-02-2020): day-first in some places, month-first in others, so the order
# of events would rest on a guess. Refused by every reader and engine, with what to give instead.
SLASHED_DATE = r"^[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}"  # (ISO dates start with the year's four digits)
SLASHED_FIX = "dates like 01/02/2020 may be day-first or month-first; give ISO 8601 dates (2020-02-01) or unix seconds"


def parse_times(raw: pl.Series, path: Path, first_line: int) -> pl.Series:
    """Integers as exact Int64 (an integer outside the int64 range is an error naming its line); other numbers as
    Float64; ISO-like date strings as seconds since the epoch."""
    if raw.dtype.is_integer():
        values = raw.cast(pl.Int64, strict=False)
        over = values.is_null() & raw.is_not_null()
        if over.any():
            row = int(over.arg_true()[0])
            raise GenpasError(f"{path}: line {first_line + row}: timestamp {raw[row]} is outside the int64 range")
        return _no_missing(values, raw, path, first_line)
    if raw.dtype.is_numeric():
        return _no_missing(raw.cast(pl.Float64), raw, path, first_line)
    if not (raw.dtype in (pl.Utf8, pl.Categorical, pl.Enum, pl.Date) or isinstance(raw.dtype, pl.Datetime)):
        raise GenpasError(f"{path}: the timestamp column holds {raw.dtype} values; give numbers, dates or text")
    text = raw.cast(pl.Utf8).str.strip_chars()
    integral = text.str.contains(INTEGRAL)
    if text.null_count() == 0 and integral.all():
        values = text.cast(pl.Int64, strict=False)
        over = values.is_null()
        if over.any():
            row = int(over.arg_true()[0])
            raise GenpasError(f"{path}: line {first_line + row}: timestamp {text[row]} is outside the int64 range")
        return values
    values = text.cast(pl.Float64, strict=False)
    if values.null_count() == len(values):  # not numbers at all: try dates (a time zone converted, none read as UTC)
        slashed = text.str.contains(SLASHED_DATE).fill_null(False)
        if slashed.any():
            row = int(slashed.arg_true()[0])
            raise GenpasError(f"{path}: line {first_line + row}: timestamp {text[row]!r}: {SLASHED_FIX}")
        try:
            dates = text.str.to_datetime(strict=False, time_unit="ms", time_zone="UTC")
        except pl.exceptions.PolarsError:  # no date format fits the first value: no dates, the error names the line
            dates = None
        if dates is not None and dates.null_count() < len(dates):
            values = dates.dt.epoch("ms").cast(pl.Float64) / 1000.0
    return _no_missing(values, raw, path, first_line)


def _no_missing(values: pl.Series, raw: pl.Series, path: Path, first_line: int) -> pl.Series:
    bad = values.is_null()
    if values.dtype.is_float():
        bad = bad | ~values.is_finite()  # NaN and +-inf: no time to order or bucket by
    bad = bad.arg_true()
    if len(bad):
        row = int(bad[0])
        if raw[row] is None:  # the field is absent or empty, not unreadable
            raise GenpasError(f"{path}: line {first_line + row}: no timestamp (a missing or empty field)")
        raise GenpasError(f"{path}: line {first_line + row}: unparseable timestamp {str(raw[row])!r}")
    return values
