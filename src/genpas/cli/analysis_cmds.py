"""`genpas analyze`: the training distribution of a strategy, without training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

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
    SparkMaster,
    Split,
    StrategyName,
    TimeCol,
    UserCol,
    engine_flags_apply,
    load,
    strategy_from,
    write_json_atomic,
)
from genpas.errors import GenpasError


@app.command("analyze")
def analyze_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output JSON file.")],
    strategy: StrategyName = "mt",
    alpha: Alpha = None,
    beta: Beta = None,
    gamma: Gamma = None,
    data: DataSpec = "ml-100k",
    fmt: Format = None,
    split: Split = "loo",
    eval_on: Annotated[str, typer.Option("--eval", help="Held-out targets: valid (default) or test (reports only).")] = "valid",
    max_len: Annotated[Optional[int], typer.Option("--max-len", help="Items of an input the model sees (default "
                       "50).")] = None,
    smoothing: Annotated[float, typer.Option("--smoothing", help="Uniform weight mixed into p_train for the KL.")] = 1e-6,
    samples: Annotated[Optional[int], typer.Option("--samples", help="Draws per held-out pair for "
                       "alignment/discrimination (default 8).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed of those draws (default 0).")] = None,
    plots: Annotated[Optional[Path], typer.Option("--plots", help="Directory for PNG plots.")] = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    time_col: TimeCol = "timestamp",
    min_user_count: MinUser = 0,
    min_item_count: MinItem = 0,
    no_cache: NoCache = False,
    overwrite: Overwrite = False,
    engine: Annotated[Optional[str], typer.Option("--engine", help="polars or spark: the exact target distributions "
                      "and the KL as per-item sums over user ranges, for data at scale (alignment/discrimination "
                      "need sampling and stay in process); default: everything in process.")] = None,
    partitions: Partitions = None,
    spark_master: SparkMaster = "local[*]",
):
    """KL to held-out targets, alignment/discrimination, input lengths, distinct pairs; JSON and optional plots."""
    from genpas.analysis import analyze
    from genpas.analysis.report import summary_lines
    from genpas.outputs import data_inputs, output_dir, output_file
    from genpas.search.screening_cache import json_safe

    engine_flags_apply(engine, partitions, spark_master)
    if engine is not None and plots is not None:
        raise GenpasError("--plots draws in process; drop --engine to get them")
    out = output_file(out, data_inputs(data), overwrite)
    if plots is not None:
        if Path(plots).expanduser().absolute() == out.absolute():
            raise GenpasError(f"--plots {plots} is the --out file; give the plots a directory of their own")
        plots = output_dir(plots, data_inputs(data), option="--plots", create=False)  # made by the first plot
        for name in PLOT_FILES:  # a plot already there is replaced with --overwrite only, as --out is
            output_file(plots / name, data_inputs(data), overwrite, option="--plots' plot")
    strat = strategy_from(strategy, alpha, beta, gamma)
    if engine is not None:
        from genpas.augment.partitioned import partition_count
        from genpas.data.load import LoadOptions, store_directory
        from genpas.engines.analysis import AnalysisJob, analyze_at_scale

        given = [flag for flag, value in (("--max-len", max_len), ("--samples", samples), ("--seed", seed))
                 if value is not None]
        if given:  # the engines compute the exact distributions and the KL only: no inputs cut, nothing sampled
            raise GenpasError(f"{', '.join(given)} apply to the in-process analysis (alignment/discrimination); "
                              "drop them or --engine")
        partition_count(partitions, 0)  # checked before any work; analyze_at_scale checks the smoothing
        directory = store_directory(data, LoadOptions(fmt, user_col, item_col, time_col, min_user_count,
                                                      min_item_count, use_cache=not no_cache))
        result = analyze_at_scale(AnalysisJob(str(directory), strat, split, eval_on), engine, partitions, smoothing,
                                  spark_master)
        write_json_atomic(out, json_safe(result))
        typer.echo(f"KL(eval || train) {result['kl']:.4f} nats ({strat.label}, {engine}, "
                   f"{result['partitions']} ranges, {result['seconds']:.1f} s); wrote {out}")
        return
    store = load(data, fmt, user_col, item_col, time_col, min_user_count, min_item_count, no_cache)
    max_len, samples, seed = (50 if max_len is None else max_len, 8 if samples is None else samples,
                              0 if seed is None else seed)
    result = analyze(store, strat, split, eval_on, max_len, smoothing, samples, seed)
    write_json_atomic(out, json_safe(result))
    for line in summary_lines(result):
        typer.echo(line)
    if plots is not None:
        written = make_plots(store, result, strat, split, eval_on, smoothing, plots)
        typer.echo(f"plots: {', '.join(str(p) for p in written)}")
    typer.echo(f"wrote {out}")


PLOT_FILES = ("rank_frequency.png", "kl_heatmap.png", "input_length.png")


def make_plots(store, result, strategy, split, eval_on, smoothing, directory: Path) -> list[Path]:
    from genpas.analysis import plots
    from genpas.analysis.grid import kl_grid

    index = {str(i): n for n, i in enumerate(store.item_ids)}
    p_train = np.zeros(store.num_items)
    p_eval = np.zeros(store.num_items)
    for item, p in result["target_distribution"].items():
        p_train[index[item]] = p
    for item, p in result["eval_distribution"].items():
        p_eval[index[item]] = p
    alphas = (0.0, 0.5, 1.0, 1.5, 2.0)
    betas = (0.0, 0.5, 1.0, 2.0, 4.0, float("inf"))
    grid = kl_grid(store, alphas, betas, split=split, eval_on=eval_on, smoothing=smoothing)
    frequency, heatmap, lengths = (directory / name for name in PLOT_FILES)
    return [
        plots.rank_frequency(p_train, p_eval, strategy.label, frequency),
        plots.kl_heatmap(alphas, betas, grid, heatmap),
        plots.input_length_histogram(np.array(result["input_length_histogram"]), strategy.label, lengths),
    ]
