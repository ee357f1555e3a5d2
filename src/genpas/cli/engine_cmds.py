"""`genpas prepare`: preprocess a log on an engine (polars out of core, or Spark) into a store directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from genpas.cli.app import app
from genpas.cli.common import DataSpec, Format, ItemCol, MinItem, MinUser, Overwrite, SparkMaster, TimeCol, UserCol
from genpas.errors import GenpasError

Engine = Annotated[str, typer.Option("--engine", help="polars (out of core on one machine) or spark (local[*] or a "
                                     "cluster: the `spark` extra).")]


def store_output(out: Path, data: str, overwrite: bool, kind: str = "store", marker: str = "manifest.json") -> Path:
    """A directory output to (re)write: never an input, never a file, never a directory of something else (what
    genpas writes there is recognised by `marker`)."""
    from genpas.outputs import data_inputs, output_dir

    out = output_dir(out, data_inputs(data), create=False)  # its writer creates it once the work is done
    source = Path(data).expanduser()
    if source.is_dir() and out.resolve().is_relative_to(source.resolve()):
        raise GenpasError(f"--out {out} lies inside the source directory {source}; write the store elsewhere")
    if out.exists() and any(out.iterdir()):
        if not (out / marker).is_file():
            raise GenpasError(f"--out {out} is a directory that holds something other than {kind}; give a new "
                              "or empty directory")
        if not overwrite:
            raise GenpasError(f"--out {out} already holds {kind}; pass --overwrite to replace it")
    return out


@app.command("prepare")
def prepare_cmd(
    out: Annotated[Path, typer.Option("--out", help="Store directory to write (memory-mappable arrays, id maps, "
                                      "manifest); every command takes it as --data.")],
    data: DataSpec = "ml-100k",
    engine: Engine = "polars",
    fmt: Format = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    time_col: TimeCol = "timestamp",
    min_user_count: MinUser = 0,
    min_item_count: MinItem = 0,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", help="Events held in memory at once while the arrays "
                                            "are prepared (bounds the memory).")] = 10_000_000,
    spark_master: SparkMaster = "local[*]",
    overwrite: Overwrite = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as one JSON object.")] = False,
):
    """Preprocess DATA (a file, a directory or glob of csv/tsv/parquet files, or a built-in name) on an engine into a
    store directory: duplicates, k-core, chronological order, id maps; the same store whichever engine."""
    from genpas.cli.common import engine_flags_apply
    from genpas.engines import PrepareOptions, prepare

    engine_flags_apply(engine, spark_master=spark_master)
    out = store_output(out, data, overwrite, kind="a store")
    if not as_json:  # progress of the long steps, on stderr
        import logging

        logging.getLogger("genpas.engines").setLevel(logging.INFO)
    options = PrepareOptions(fmt, user_col, item_col, time_col, min_user_count, min_item_count, chunk_rows)
    extra = {"master": spark_master} if engine == "spark" else {}
    result = prepare(data, out, engine, options, **extra)
    if as_json:
        typer.echo(json.dumps(result))
    else:
        typer.echo(f"prepared {result['interactions']:,} interactions of {result['users']:,} users over "
                   f"{result['items']:,} items with {engine} in {result['seconds']:.1f} s; store in {out}")
