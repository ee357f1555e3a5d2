"""Options shared by several commands, and the one place where output files are written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from genpas.data import LoadOptions, load_dataset
from genpas.data.readers import FORMATS

DataSpec = Annotated[str, typer.Option("--data", help="'ml-100k' (built in) or a path to an interaction file.")]
Format = Annotated[Optional[str], typer.Option("--format", help=f"One of {', '.join(FORMATS)}; detected when omitted.")]
UserCol = Annotated[str, typer.Option("--user-col", help="User column (csv/tsv/parquet/recbole).")]
ItemCol = Annotated[str, typer.Option("--item-col", help="Item column (csv/tsv/parquet/recbole).")]
TimeCol = Annotated[str, typer.Option("--time-col", help="Timestamp column (csv/tsv/parquet/recbole).")]
MinUser = Annotated[int, typer.Option("--min-user-count", help="Iterative k-core: minimum events per user.")]
MinItem = Annotated[int, typer.Option("--min-item-count", help="Iterative k-core: minimum events per item.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the preprocessed-data cache.")]


def load(data, fmt, user_col, item_col, time_col, min_user, min_item, no_cache):
    options = LoadOptions(fmt, user_col, item_col, time_col, min_user, min_item, use_cache=not no_cache)
    return load_dataset(data, options)


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")
