"""Readers: every supported file format in, one canonical event table out.

Whatever the source, a reader returns a polars DataFrame with exactly three columns, in source order:

    user  (Utf8)     the original user id, a token: never assumed numeric
    item  (Utf8)     the original item id, a token
    time  (Int64 when every timestamp is an integer, else Float64)  seconds (or any monotone clock); integers stay
          exact end to end; ties are broken later by source order

Readers never drop a row silently: a row that cannot be read is an error that names the file and the line.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from genpas.data.timestamps import parse_times
from genpas.errors import GenpasError

FORMATS = ("csv", "tsv", "parquet", "movielens", "amazon", "recbole")
CANONICAL = ("user", "item", "time")


@dataclass(frozen=True)
class Columns:
    """Column names of a generic table (csv, tsv, parquet)."""

    user: str = "user_id"
    item: str = "item_id"
    time: str = "timestamp"

    def __post_init__(self):
        if len({self.user, self.item, self.time}) < 3:  # one column read twice would be a silent nonsense log
            raise GenpasError(f"--user-col, --item-col and --time-col must name three different columns, got "
                              f"{self.user!r}, {self.item!r}, {self.time!r}")


# --------------------------------------------------------------------------------------------------------------------
# Raw bytes and format detection


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic number."""
    if not path.exists():
        raise GenpasError(f"{path}: no such file; check the path or use --data ml-100k for the built-in dataset")
    if path.is_dir():
        if (path / "offsets.npy").is_file() or (path / "stats.json").is_file():  # a store without its manifest
            from genpas.data.store import read_manifest

            read_manifest(path)  # says what is missing
        raise GenpasError(f"{path}: is a directory; point --data at the interaction file inside it")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise GenpasError(f"{path}: corrupt gzip file ({exc}); download it again") from None
    elif path.suffix == ".gz":
        raise GenpasError(f"{path}: corrupt gzip file (no gzip header); download it again")
    if not raw.strip():
        raise GenpasError(f"{path}: the file is empty")
    return text_bytes(raw, path)


def text_bytes(raw: bytes, path: Path) -> bytes:
    """`raw`, unless its start holds NUL bytes: a Parquet or other binary file read as text, or UTF-16 text."""
    head = raw[:65536]
    if b"\x00" in head:
        raise GenpasError(f"{path}: binary data (NUL bytes), not UTF-8 text; check the file and its --format")
    if b"\r" in head.rstrip(b"\r") and b"\n" not in head:
        raise GenpasError(f"{path}: its lines end in a carriage return alone (old Mac text); convert them to \\n "
                          "line ends (e.g. tr '\\r' '\\n')")
    return raw


def _head(path: Path, size: int = 4096) -> bytes:
    """The first bytes of the (decompressed) file, for format detection without reading it all."""
    if not path.exists() or path.is_dir():
        read_bytes(path)  # raises the right error
    with path.open("rb") as fh:
        magic = fh.read(2)
    try:
        with (gzip.open(path, "rb") if magic == b"\x1f\x8b" else path.open("rb")) as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise GenpasError(f"{path}: corrupt gzip file ({exc}); download it again") from None


def _stem(path: Path) -> str:
    """File name without a trailing .gz."""
    name = path.name.lower()
    return name[:-3] if name.endswith(".gz") else name


def detect_format(path: Path, head: bytes) -> str:
    """Guess the format from the file name first, then from the first line of content."""
    name = _stem(path)
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    if name.endswith(".inter"):
        return "recbole"
    if name.endswith(".parquet") or head[:4] == b"PAR1":
        return "parquet"
    if name in ("u.data", "ratings.dat") or name.endswith(".dat"):
        return "movielens"
    if name.endswith((".json", ".jsonl", ".ndjson")) or first.startswith("{"):
        return "amazon"
    if name == "ratings.csv" and first.lower().startswith("userid"):
        return "movielens"
    if name.endswith(".tsv"):
        return "tsv"
    if name.endswith((".csv", ".txt")):
        fields = first.split(",")
        # Amazon's ratings-only CSVs: user,item,rating,timestamp with no header: a rating (0 to 10), then a number.
        # A headerless file of another layout (say user,item,timestamp,rating) falls to csv, whose header check names
        # the columns it found, rather than being ordered by its ratings.
        if len(fields) == 4 and _is_rating(fields[2]) and _is_number(fields[3]):
            return "amazon"
        return "csv"
    raise GenpasError(
        f"{path}: cannot tell the format from the name or content; pass --format, one of {', '.join(FORMATS)}"
    )


def _is_rating(text: str) -> bool:
    try:
        return 0 <= float(text) <= 10
    except ValueError:
        return False


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------------------------------
# Validation shared by every reader


def _finish(df: pl.DataFrame, path: Path, first_line: int) -> pl.DataFrame:
    """Check ids and timestamps; `first_line` is the file line of the first data row (for error messages)."""
    if df.height == 0:
        raise GenpasError(f"{path}: no data rows (only a header?)")
    for col in ("user", "item"):
        bad = df.select((pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")).arg_true().first()).item()
        if bad is not None:
            raise GenpasError(f"{path}: line {first_line + bad}: empty {col} id")
    time = parse_times(df["time"], path, first_line)
    return df.with_columns(time=time)


# --------------------------------------------------------------------------------------------------------------------
# Delimited text (csv, tsv, movielens, amazon csv, recbole)


def _read_delimited(raw: bytes, path: Path, sep: str, has_header: bool, names: list[str] | None = None) -> pl.DataFrame:
    """All columns as strings, so ids keep leading zeros and nothing is guessed."""
    if sep == "::":  # polars takes one-byte separators; '::' never occurs inside MovieLens fields
        raw = raw.replace(b"::", b"\x1f")
        sep = "\x1f"
    try:
        return pl.read_csv(
            io.BytesIO(raw),
            separator=sep,
            has_header=has_header,
            new_columns=names,
            infer_schema=False,
            quote_char=quote_char(sep),
            truncate_ragged_lines=False,
        )
    except pl.exceptions.PolarsError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenpasError(f"{path}: cannot parse as '{sep}'-separated text: {message}") from None


def quote_char(sep: str) -> str | None:
    """The quote every reader and engine honours: in comma- and semicolon-separated files only (a tab-separated
    file's quotes are plain characters)."""
    return '"' if sep in (",", ";") else None


def header_names(raw: bytes, sep: str, path: Path | str = "the file") -> list[str]:
    """The first line's names, unquoted as the readers unquote data (only in comma- and semicolon-separated files)."""
    line = raw[:raw.find(b"\n") if b"\n" in raw else len(raw)].decode("utf-8-sig", "replace").rstrip("\r")
    quoting = dict(quotechar=quote_char(sep)) if quote_char(sep) else dict(quoting=csv.QUOTE_NONE)
    try:
        return next(csv.reader([line], delimiter=sep, **quoting), [])
    except csv.Error as exc:  # e.g. a carriage return inside a first line longer than the check of text_bytes
        raise GenpasError(f"{path}: cannot read its header line ({exc}); check its line ends and quotes") from None


def no_repeated_column(names: list[str], wanted, path: Path) -> None:
    """A column the reader uses, named twice in the header, is ambiguous (one copy would be read silently): refused.
    Repeated names of columns it does not read stay harmless."""
    twice = next((name for name in wanted if names.count(name) > 1), None)
    if twice is not None:
        raise GenpasError(f"{path}: the header names column {twice!r} twice; rename one of them")


def check_header(path: Path, sep: str, wanted) -> None:
    """`no_repeated_column` on a file's first line, without reading the whole file (the engines stream it)."""
    no_repeated_column(header_names(text_bytes(_head(path, 1 << 16), path), sep, path), wanted, path)


def _select(df: pl.DataFrame, path: Path, cols: Columns, header: list[str] | None = None) -> pl.DataFrame:
    if header is not None:
        no_repeated_column(header, (cols.user, cols.item, cols.time), path)
    missing = [c for c in (cols.user, cols.item, cols.time) if c not in df.columns]
    if missing and any(_is_number(name) for name in df.columns):  # the first line is data, not a header
        raise GenpasError(f"{path}: the first line ({', '.join(df.columns)}) looks like data, not a header; add a "
                          f"header line naming the columns (user, item and time: see --user-col/--item-col/--time-col)")
    if missing:
        raise GenpasError(
            f"{path}: missing column {missing[0]!r}; the file has {', '.join(map(repr, df.columns))} "
            f"(choose with --user-col/--item-col/--time-col)"
        )
    return df.select(pl.col(cols.user).alias("user"), pl.col(cols.item).alias("item"), pl.col(cols.time).alias("time"))


def sniff_separator(raw: bytes) -> str:
    """The delimiter of delimited text (`raw`: its decompressed start), one of , ; tab |: the rule of every reader and
    engine."""
    sample = raw[:65536].decode("utf-8", "replace")
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_table(path: Path, fmt: str, cols: Columns) -> pl.DataFrame:
    """csv / tsv / parquet with named columns."""
    if fmt == "parquet":
        try:
            df = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise GenpasError(f"{path}: cannot read as parquet: {str(exc).splitlines()[0]}") from None
        if df.height == 0:
            raise GenpasError(f"{path}: no data rows")
        df = _select(df, path, cols)
        for name, column in (("user", cols.user), ("item", cols.item)):
            dtype = df[name].dtype
            if not (dtype.is_integer() or dtype in (pl.Utf8, pl.Categorical, pl.Enum)):
                raise GenpasError(f"{path}: column {column!r} holds {dtype} values; ids must be text or integers")
        df = df.with_columns(pl.col("user").cast(pl.Utf8), pl.col("item").cast(pl.Utf8))
        return _finish(df, path, first_line=1)
    raw = read_bytes(path)
    sep = "\t" if fmt == "tsv" else sniff_separator(raw)
    df = _select(_read_delimited(raw, path, sep, has_header=True), path, cols, header_names(raw, sep, path))
    return _finish(df, path, first_line=2)


def read_movielens(path: Path) -> pl.DataFrame:
    """ml-100k u.data (tab, no header), ml-1m/10m ratings.dat ('::'), ml-20m/25m/latest ratings.csv (header)."""
    raw = read_bytes(path)
    first = raw.split(b"\n", 1)[0].decode("utf-8", "replace")
    name = _stem(path)
    if first.lower().startswith("userid"):  # ratings.csv of ml-20m and later
        df = _read_delimited(raw, path, ",", has_header=True)
        return _finish(_select(df, path, Columns("userId", "movieId", "timestamp"), header_names(raw, ",", path)), path,
                       first_line=2)
    if name != "u.data" and (name.endswith(".dat") or "::" in first):
        if "::" not in first:
            raise GenpasError(f"{path}: line 1: expected '::' separators (MovieLens ratings.dat), found {first!r}")
        sep = "::"
    else:
        if "\t" not in first:
            raise GenpasError(f"{path}: line 1: expected tab separators (MovieLens u.data), found {first!r}")
        sep = "\t"
    df = _read_delimited(raw, path, sep, has_header=False)
    if df.width != 4:
        raise GenpasError(f"{path}: line 1: expected 4 fields (user, item, rating, timestamp), found {df.width}")
    df = df.rename(dict(zip(df.columns, ["user", "item", "rating", "time"]))).select(CANONICAL)
    return _finish(df, path, first_line=1)


def read_recbole(path: Path, cols: Columns) -> pl.DataFrame:
    """RecBole atomic `.inter`: tab-separated, typed header such as `user_id:token`."""
    raw = read_bytes(path)
    no_repeated_column([name.split(":", 1)[0] for name in header_names(raw, "\t", path)], (cols.user, cols.item, cols.time),
                       path)
    df = _read_delimited(raw, path, "\t", has_header=True)
    untyped = {c.split(":", 1)[0]: c for c in reversed(df.columns)}  # name -> column: a repeated name (not read)
    df = df.select(pl.col(column).alias(name) for name, column in untyped.items())  # keeps its first copy
    return _finish(_select(df, path, cols), path, first_line=2)


# --------------------------------------------------------------------------------------------------------------------


def read_events(path: Path, fmt: str | None = None, cols: Columns = Columns()) -> pl.DataFrame:
    """Read any supported file into the canonical (user, item, time) table."""
    path = Path(path)
    if fmt is None:
        fmt = detect_format(path, _head(path))
    if fmt not in FORMATS:
        raise GenpasError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt in ("csv", "tsv", "parquet"):
        return read_table(path, fmt, cols)
    if fmt == "movielens":
        return read_movielens(path)
    if fmt == "amazon":
        from genpas.data.amazon import read_amazon

        return read_amazon(path, cols)
    return read_recbole(path, cols)
