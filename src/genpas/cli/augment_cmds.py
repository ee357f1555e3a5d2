"""`genpas pairs`: write training pairs as JSON lines (exact enumeration or a seeded sample)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from genpas.atomic import atomic_path, write_text
from genpas.cli.app import app
from genpas.cli.common import (
    Alpha,
    Beta,
    DataSpec,
    Format,
    Gamma,
    ItemCol,
    MinItem,
    MinUser,
    NoCache,
    Overwrite,
    Partitions,
    Seed,
    SparkMaster,
    Split,
    StrategyName,
    TimeCol,
    UserCol,
    engine_flags_apply,
    load,
    strategy_from,
)
from genpas.data.split import training_part
from genpas.errors import GenpasError


@app.command("pairs")
def pairs_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output .jsonl file (written atomically).")],
    strategy: StrategyName = "mt",
    alpha: Alpha = None,
    beta: Beta = None,
    gamma: Gamma = None,
    exact: Annotated[bool, typer.Option("--exact", help="Every triple once, with its probability `prob`.")] = False,
    num_pairs: Annotated[Optional[int], typer.Option("--num-pairs", help="Draw this many pairs (i.i.d.); default: one "
                         "epoch of `genpas train --mode pairs` (the Multi-Target pair count), the very draws of its "
                         "first epoch at the same --seed.")] = None,
    seed: Seed = 0,
    data: DataSpec = "ml-100k",
    fmt: Format = None,
    split: Split = "loo",
    max_len: Annotated[Optional[int], typer.Option("--max-len", help="Keep the last L items of every input; default: "
                       "the whole prefix (`genpas train` keeps 50).")] = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    time_col: TimeCol = "timestamp",
    min_user_count: MinUser = 0,
    min_item_count: MinItem = 0,
    no_cache: NoCache = False,
    overwrite: Overwrite = False,
    engine: Annotated[Optional[str], typer.Option("--engine", help="polars or spark: write an epoch's draws as "
                      "partitioned Parquet into the directory --out (the same pairs whatever the partitioning); "
                      "default: JSON lines in process.")] = None,
    partitions: Partitions = None,
    spark_master: SparkMaster = "local[*]",
):
    """Write training pairs (user, k, j, input, target[, prob]) as JSON lines, or with --engine as Parquet."""
    from genpas.augment import EpochSampler, PairDistribution
    from genpas.outputs import data_inputs, output_file

    if seed < 0:
        raise GenpasError(f"--seed must be >= 0, got {seed}")
    engine_flags_apply(engine, partitions, spark_master)
    if engine is not None:
        return _pairs_at_scale(out, data, engine, partitions, spark_master, overwrite, exact, num_pairs, seed, split,
                               max_len, strategy_from(strategy, alpha, beta, gamma),
                               (fmt, user_col, item_col, time_col, min_user_count, min_item_count, no_cache))
    out = output_file(out, data_inputs(data), overwrite)
    if exact and num_pairs is not None:
        raise GenpasError("give --exact or --num-pairs N, not both")
    if num_pairs is not None and num_pairs < 1:
        raise GenpasError(f"--num-pairs must be at least 1, got {num_pairs}")
    if max_len is not None and max_len < 1:
        raise GenpasError("--max-len must be at least 1")
    strat = strategy_from(strategy, alpha, beta, gamma)
    store = training_part(load(data, fmt, user_col, item_col, time_col, min_user_count, min_item_count, no_cache), split)
    dist = PairDistribution(store.lengths, strat)
    if exact:
        chunks = [dist.enumerate()]
    else:  # drawn and written a block at a time: memory stays bounded however many pairs are asked for
        chunks = ((*drawn, None) for drawn in EpochSampler(dist, seed=seed, size=num_pairs).chunks(0))
    count = write_pairs(out, store, chunks, max_len)
    typer.echo(f"wrote {count:,} pairs ({strat.label}) to {out}")


def write_pairs(path: Path, store, chunks, max_len: int | None) -> int:
    """JSON lines with original ids, from chunks of (u, k, j, prob or None); `k` and `j` are 1-based positions in the
    user's sequence. Returns the number of pairs written."""
    item_json = [json.dumps(str(x)) for x in store.item_ids]
    user_json = [json.dumps(str(x)) for x in store.user_ids]
    items, count = store.items, 0
    with atomic_path(path) as tmp:
        with open(tmp, "w") as fh:
            for u, k, j, prob in chunks:
                e = j if max_len is None else np.maximum(j, k - max_len)
                for row in range(len(u)):
                    base = store.offsets[u[row]]
                    inputs = ", ".join(item_json[i] for i in items[base + e[row] - 1 : base + k[row] - 1])
                    line = (f'{{"user": {user_json[u[row]]}, "k": {k[row]}, "j": {j[row]}, "input": [{inputs}], '
                            f'"target": {item_json[items[base + k[row] - 1]]}')
                    fh.write(line + (f', "prob": {float(prob[row])!r}}}\n' if prob is not None else "}\n"))
                count += len(u)
    return count


def _pairs_at_scale(out, data, engine, partitions, master, overwrite, exact, num_pairs, seed, split, max_len, strat,
                    load_args):
    from genpas.augment.partitioned import partition_count
    from genpas.cli.engine_cmds import store_output
    from genpas.data.load import LoadOptions, store_directory
    from genpas.engines.pairs import PairJob, write_pairs

    if exact:
        raise GenpasError("--exact writes JSON lines in process; drop --engine, or draw with --num-pairs")
    partition_count(partitions, 0)  # checked before any work
    if num_pairs is not None and num_pairs < 1:
        raise GenpasError(f"--num-pairs must be at least 1, got {num_pairs}")
    if max_len is not None and max_len < 1:
        raise GenpasError("--max-len must be at least 1")
    out = store_output(out, data, overwrite, kind="pairs", marker="_pairs.json")
    fmt, user_col, item_col, time_col, min_user, min_item, no_cache = load_args
    directory = store_directory(data, LoadOptions(fmt, user_col, item_col, time_col, min_user, min_item,
                                                  use_cache=not no_cache))
    job = PairJob(str(directory), strat, split, num_pairs, seed, 0, max_len)
    result = write_pairs(job, out, engine, partitions, master)
    write_text(out / "_pairs.json", json.dumps({**result, "strategy": strat.label, "seed": seed, "split": split,
                                                "max_len": max_len, "data": str(data)}, indent=1) + "\n")
    typer.echo(f"wrote {result['pairs']:,} pairs ({strat.label}) in {result['partitions']} Parquet parts with "
               f"{engine} in {result['seconds']:.1f} s to {out}")
