"""Options shared by several commands, and the one place where output files are written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from genpas.atomic import write_text
from genpas.data import LoadOptions, load_dataset
from genpas.data.readers import FORMATS

DataSpec = Annotated[str, typer.Option("--data", help="'ml-100k' or 'ml-1m' (built in) or a path to an interaction file.")]
Format = Annotated[Optional[str], typer.Option("--format", help=f"One of {', '.join(FORMATS)}; detected when omitted.")]
UserCol = Annotated[str, typer.Option("--user-col", help="User column (csv/tsv/parquet/recbole).")]
ItemCol = Annotated[str, typer.Option("--item-col", help="Item column (csv/tsv/parquet/recbole).")]
TimeCol = Annotated[str, typer.Option("--time-col", help="Timestamp column (csv/tsv/parquet/recbole).")]
MinUser = Annotated[int, typer.Option("--min-user-count", help="Iterative k-core: minimum events per user.")]
MinItem = Annotated[int, typer.Option("--min-item-count", help="Iterative k-core: minimum events per item.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the preprocessed-data cache.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists (never an input file).")]


def load(data, fmt, user_col, item_col, time_col, min_user, min_item, no_cache):
    options = LoadOptions(fmt, user_col, item_col, time_col, min_user, min_item, use_cache=not no_cache)
    return load_dataset(data, options)


def write_json_atomic(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


StrategyName = Annotated[str, typer.Option("--strategy", help="lt, mt, sw (exact presets) or genpas.")]
Alpha = Annotated[Optional[str], typer.Option("--alpha", help="Sequence bias (genpas): p(u) ~ (n_u - 1)^alpha.")]
Beta = Annotated[Optional[str], typer.Option("--beta", help="Target bias (genpas): p(k|u) ~ (k-1)^beta; inf = last item.")]
Gamma = Annotated[Optional[str], typer.Option("--gamma", help="Input bias (genpas): p(j|k) ~ j^gamma; -inf = full prefix.")]
Split = Annotated[str, typer.Option("--split", help="'loo': the leave-one-out training part; 'none': whole sequences.")]
MaxLen = Annotated[Optional[int], typer.Option("--max-len", help="Keep the last L items of every input.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]


def strategy_from(name, alpha, beta, gamma):
    from genpas.augment import make_strategy, parse_bias

    return make_strategy(name, parse_bias(alpha), parse_bias(beta), parse_bias(gamma))
