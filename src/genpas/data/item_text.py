"""Item text (for content embeddings and TIGER's semantic ids): one string per item, from a metadata file.

Supported metadata files, detected by name and first line:

    RecBole .item      every column but the id, joined: "Toy Story 1995 Animation Children's Comedy" (the built-in
                       ml-100k's ml-100k.item)
    movies.dat         MovieLens-1M `MovieID::Title::Genres` (latin-1), genres joined with spaces
    movies.csv         MovieLens-20M/25M `movieId,title,genres`
    Amazon metadata    JSON lines, plain or .gz: 2014 (Python-literal lines), 2018 and 2023 JSON; title, brand and
                       categories (2014/2018 `categories`/`category`, 2023 `categories`/`main_category`); the id is
                       `asin` (2014/2018) or `parent_asin` (2023)
    csv / tsv          a header with an item column (`--item-col`) and any text columns, joined

Items of the interaction log without a metadata row get None (the caller decides the fallback); metadata rows of
items that are not in the log are ignored. `default_item_text` finds the metadata file that ships beside a dataset.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np

from genpas.data.readers import no_repeated_column
from genpas.errors import GenpasError


def default_item_text(data: str) -> Path | None:
    """The metadata file beside a dataset, if it has one (None for Amazon reviews: give --item-text)."""
    from genpas.data import builtin

    if data in builtin.BUILTIN:
        return builtin.dataset_dir(data) / builtin.DATASETS[data].item
    path = Path(data).expanduser()
    candidates = [path.with_suffix(".item"), path.parent / "movies.dat", path.parent / "movies.csv"]
    return next((c for c in candidates if c.is_file()), None)


def read_item_text(path: Path, item_ids: np.ndarray, item_col: str = "item_id") -> list[str | None]:
    """Text of each item of `item_ids` (the store's original ids, as strings), None where the file has none."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise GenpasError(f"{path}: no such item text file")
    texts = _read_table(path, item_col)
    if not texts:
        raise GenpasError(f"{path}: no item text found (expected a RecBole .item, movies.dat/.csv, Amazon metadata "
                          f"or a csv with an {item_col!r} column)")
    return [texts.get(str(i)) for i in item_ids]


def _open_text(path: Path, encoding: str = "utf-8") -> io.TextIOBase:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return io.StringIO(raw.decode(encoding, errors="replace"))


def _read_table(path: Path, item_col: str) -> dict[str, str]:
    name = path.name.lower()
    if name.endswith(".item"):
        return _recbole_item(path)
    if name == "movies.dat":
        return _movielens(_open_text(path, "latin-1"), "::")
    first = _open_text(path).readline().strip()
    if first.startswith("{"):
        return _amazon_meta(path)
    if name == "movies.csv" or first.lower().startswith("movieid,title"):
        return _movielens_csv(path)
    return _generic_table(path, first, item_col)


def _recbole_item(path: Path) -> dict[str, str]:
    lines = _open_text(path).read().splitlines()
    header = [h.split(":")[0] for h in lines[0].split("\t")]
    if "item_id" not in header:
        raise GenpasError(f"{path}: line 1: a RecBole .item file needs an item_id column")
    no_repeated_column(header, ("item_id",), path)
    key = header.index("item_id")
    out = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise GenpasError(f"{path}: line {number}: expected {len(header)} tab-separated fields, got {len(fields)}")
        out[fields[key]] = " ".join(f for i, f in enumerate(fields) if i != key and f).strip()
    return out


def _movielens(handle, sep: str) -> dict[str, str]:
    out = {}
    for line in handle:
        parts = line.rstrip("\n").split(sep)
        if len(parts) >= 3:
            out[parts[0]] = f"{parts[1]} {parts[2].replace('|', ' ')}".strip()
    return out


def _movielens_csv(path: Path) -> dict[str, str]:
    reader = csv.reader(_open_text(path))
    next(reader, None)
    return {row[0]: f"{row[1]} {row[2].replace('|', ' ')}".strip() for row in reader if len(row) >= 3}


def _amazon_meta(path: Path) -> dict[str, str]:
    out = {}
    for number, line in enumerate(_open_text(path), start=1):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            try:
                record = ast.literal_eval(line)  # 2014 metadata: Python literals, never eval()
            except (ValueError, SyntaxError):
                raise GenpasError(f"{path}: line {number}: neither JSON nor a Python literal") from None
        item = record.get("parent_asin") or record.get("asin")
        if item is None:
            raise GenpasError(f"{path}: line {number}: no 'asin' or 'parent_asin' field")
        parts = [record.get("title"), record.get("brand"), record.get("main_category")]
        categories = record.get("categories") or record.get("category") or []
        flat = [c for group in categories for c in (group if isinstance(group, list) else [group])]
        parts += list(dict.fromkeys(str(c) for c in flat))  # ordered, without repeats
        out[str(item)] = " ".join(str(p) for p in parts if p).strip()
    return out


def _generic_table(path: Path, header_line: str, item_col: str) -> dict[str, str]:
    dialect = "excel-tab" if "\t" in header_line else "excel"
    reader = csv.DictReader(_open_text(path), dialect=dialect)
    if item_col not in (reader.fieldnames or []):
        raise GenpasError(f"{path}: line 1: no {item_col!r} column (columns: {', '.join(reader.fieldnames or [])}); "
                          f"name it with --item-col")
    no_repeated_column(list(reader.fieldnames), (item_col,), path)
    return {row[item_col]: " ".join(v for k, v in row.items() if k != item_col and v).strip() for row in reader}
