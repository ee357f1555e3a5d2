"""Options shared by several commands, and the one place where output files are written atomically."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from genpas.atomic import write_text
from genpas.data import LoadOptions, load_dataset
from genpas.data.readers import FORMATS
from genpas.errors import GenpasError

log = logging.getLogger(__name__)

DataSpec = Annotated[str, typer.Option("--data", help="'ml-100k' or 'ml-1m' (built in), a path to an interaction file, "
                                     "or a store directory from `genpas prepare`.")]
# For the commands that read a --config of training options: a --data left out keeps the config's.
ConfigData = Annotated[Optional[str], typer.Option("--data", help="'ml-100k' or 'ml-1m' (built in), a path to an "
                                                 "interaction file, or a store directory from `genpas prepare` "
                                                 "(default: the --config's data, else ml-100k).")]
Format = Annotated[Optional[str], typer.Option("--format", help=f"One of {', '.join(FORMATS)}; detected when omitted.")]
UserCol = Annotated[str, typer.Option("--user-col", help="User column (csv/tsv/parquet/recbole; a field of Amazon JSON lines).")]
ItemCol = Annotated[str, typer.Option("--item-col", help="Item column (csv/tsv/parquet/recbole; a field of Amazon JSON lines).")]
TimeCol = Annotated[str, typer.Option("--time-col", help="Timestamp column (csv/tsv/parquet/recbole; a field of Amazon JSON lines).")]
MinUser = Annotated[int, typer.Option("--min-user-count", help="Iterative k-core: minimum events per user.")]
MinItem = Annotated[int, typer.Option("--min-item-count", help="Iterative k-core: minimum events per item.")]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the preprocessed-data cache.")]
Partitions = Annotated[Optional[int], typer.Option("--partitions", help="User ranges (Parquet parts) with --engine; "
                                                   "default: one per 2M events.")]
SparkMaster = Annotated[str, typer.Option("--spark-master", help="Spark master with --engine spark (ignored under "
                                          "spark-submit, which sets its own).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists (never an input file).")]


def on_command_line(ctx, name: str) -> bool:
    """Whether the user gave parameter `name` (on the command line or in the environment), not its default."""
    return getattr(ctx.get_parameter_source(name), "name", None) in ("COMMANDLINE", "ENVIRONMENT")


def data_fields(fmt, user_col, item_col, time_col, min_user, min_item, ctx=None) -> dict:
    """The data flags given on the command line, as TrainConfig fields (for the commands that train: run, search,
    experiment); a flag left out keeps what --config says. With the command's context, a flag given at its default
    value counts as given (`--user-col user_id` overrides a config's other column); without, only other values do."""
    given = {"format": fmt, "user_col": user_col, "item_col": item_col, "time_col": time_col,
             "min_user_count": min_user, "min_item_count": min_item}
    if ctx is not None:
        on_line = {field for (name, _, _), field in zip(DATA_FLAGS, given) if on_command_line(ctx, name)}
        return {k: v for k, v in given.items() if k in on_line}
    defaults = {"format": None, "user_col": "user_id", "item_col": "item_id", "time_col": "timestamp",
                "min_user_count": 0, "min_item_count": 0}
    return {k: v for k, v in given.items() if v != defaults[k]}


DATA_FLAGS = (("fmt", Format, None), ("user_col", UserCol, "user_id"), ("item_col", ItemCol, "item_id"),
              ("time_col", TimeCol, "timestamp"), ("min_user_count", MinUser, 0), ("min_item_count", MinItem, 0))


def with_data_flags(command):
    """Give a command the data flags of `genpas train` (--format, --user-col, ..., --min-item-count); it receives
    the ones the user set as TrainConfig fields in one keyword argument, `data_flags`."""
    signature = inspect.signature(command, eval_str=True)  # typer reads the Annotated options themselves
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
             for name, kind, default in DATA_FLAGS]
    kept = [p for p in signature.parameters.values() if p.name != "data_flags"]

    context = inspect.Parameter("_data_flags_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        flags = [kwargs.pop(name) for name, _, _ in DATA_FLAGS]
        return command(*args, data_flags=data_fields(*flags, ctx=kwargs.pop("_data_flags_ctx", None)), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=kept + extra + [context])
    return wrapper


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


def split_list(text: str, option: str) -> list[str]:
    """The stripped items of an option's comma-separated value ([] for an empty value); an empty item (`1,,2`, a
    trailing comma) is refused rather than dropped."""
    if not text.strip():
        return []
    items = [s.strip() for s in text.split(",")]
    if "" in items:
        raise GenpasError(f"{option}: empty item at position {items.index('') + 1} of {text!r}")
    return items


def strategy_names(text: str, known) -> tuple[str, ...]:
    """The names of --strategies, each known and given once (a strategy listed twice would train and report twice)."""
    names = tuple(s.lower() for s in split_list(text, "--strategies"))
    if not names:
        raise GenpasError(f"--strategies: give at least one of {', '.join(known)}")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise GenpasError(f"--strategies: unknown {unknown[0]!r}; choose from {', '.join(known)}")
    twice = next((n for k, n in enumerate(names) if n in names[:k]), None)
    if twice is not None:
        raise GenpasError(f"--strategies: {twice!r} is given twice in {text!r}")
    return names


def progress_text(row: dict) -> str:
    """A plan row's progress, e.g. '90 epochs, best valid ndcg@10 0.1798 (epoch 78); ends within 13 more unless it
    improves (about 26 min at the recent pace)'; empty before the first epoch. A run that improves goes on (patience
    restarts), up to the epoch cap."""
    if not row["epochs"]:
        return ""
    text = f"  {row['epochs']} epochs, best valid ndcg@10 {row['best_valid_ndcg@10']:.4f} (epoch {row['best_epoch']})"
    if row["epochs_left"]:
        text += f"; ends within {row['epochs_left']} more unless it improves"
        if row["epoch_seconds"]:
            minutes = row["epochs_left"] * row["epoch_seconds"] / 60
            text += f" (about {minutes:.0f} min at the recent pace)" if minutes < 120 else \
                f" (about {minutes / 60:.1f} h at the recent pace)"
    return text


def plan_note(row: dict) -> str:
    """What a plan row adds about a lower epoch cap's run (search/continuation.py): the run it continues, or the
    finished run that stands for it."""
    if "continues" in row:
        return f"  continues {row['continues']} after its {row['continues_after']} epochs"
    return f"  = {row['same_as']} (patience ended it under a lower epoch cap)" if "same_as" in row else ""


def engine_flags_apply(engine: str | None, partitions: int | None = None, spark_master: str = "local[*]") -> None:
    """--partitions go with an engine and --spark-master with Spark: one error line rather than flags ignored."""
    if engine is None and partitions is not None:
        raise GenpasError("--partitions applies with --engine polars or spark; add one, or drop --partitions")
    if engine != "spark" and spark_master != "local[*]":
        raise GenpasError(f"--spark-master applies with --engine spark; this command runs "
                          f"{'in process' if engine is None else 'on ' + engine}")


def job_config_values(config: Path | None) -> dict:
    """A --config's values for a command that sets every run's strategy itself (search, experiment, run): the file's
    strategy and biases are not used (as before these were checked with the other options), and a warning says so
    where they ask for anything but the default MT."""
    from genpas.augment.strategy import BIASES
    from genpas.train.config import TrainConfig

    values = TrainConfig.yaml_values(config) if config is not None else {}
    dropped = {key: values.pop(key) for key in ("strategy", *BIASES) if key in values}
    if dropped.get("strategy", "mt") != "mt" or any(dropped.get(b) is not None for b in BIASES):
        log.warning("%s: %s not used: this command sets the strategy of every run it trains", config,
                    ", ".join(f"{k}: {v}" for k, v in dropped.items()))
    return values
