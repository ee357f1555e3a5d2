"""`genpas search`: screen (alpha, beta, gamma) without training, train the best few and the baselines, pick one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from genpas.cli.app import app
from genpas.cli.common import (
    ConfigData,
    Format,
    ItemCol,
    MinItem,
    MinUser,
    Seed,
    TimeCol,
    UserCol,
    data_fields,
    job_config_values,
    on_command_line,
    plan_note,
    progress_text,
)
from genpas.errors import GenpasError
from genpas.train.config import MAX_SEED


@app.command("search")
def search_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Search directory (search.json, ledger, runs).")],
    data: ConfigData = None,
    model: Annotated[Optional[str], typer.Option("--model", help="sasrec, hstu or tiger (unset options take the model's "
                     "defaults); default: the --config's model, else sasrec.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="Screened settings to train.")] = 10,
    seed: Seed = 0,
    time_budget: Annotated[Optional[float], typer.Option("--time-budget",
                           help="Training minutes for the whole search, shared equally by the trainings.")] = None,
    budget_minutes: Annotated[Optional[float], typer.Option("--budget-minutes", hidden=True)] = None,  # old spelling
    keep_fraction: Annotated[float, typer.Option("--keep-fraction", help="Share of the grid kept by KL.")] = 0.2,
    samples: Annotated[int, typer.Option("--samples", help="Draws per held-out pair for the ratio.")] = 8,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML of training options.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    plan: Annotated[bool, typer.Option("--plan", help="Train nothing: list the trainings the search needs and whether "
                    "each is finished, running, started (resumable) or pending; reads --out, writes nothing.")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="With other processes training this search: "
                    "--no-wait trains only what no process holds, then stops instead of waiting for their trainings "
                    "(the last process to finish writes search.json).")] = True,
    prune: Annotated[bool, typer.Option("--prune", help="Stop a training early once its trend and noise say it cannot "
                     "reach the best finished one; it stays resumable (docs/method.md, \"Pruning a search\").")] = False,
    prune_factor: Annotated[float, typer.Option("--prune-factor", help="With --prune: how much steeper than its "
                            "recent trend a training may still climb (larger stops fewer).")] = 2.0,
    prune_margin: Annotated[float, typer.Option("--prune-margin", help="With --prune: the relative margin on a "
                            "training's reach (larger stops fewer).")] = 0.05,
    prune_baselines: Annotated[bool, typer.Option("--prune-baselines", help="With --prune: prune the baselines LT, "
                               "MT and SW too. Without it they train to convergence, as GenPAS is held against "
                               "them.")] = False,
    fmt: Format = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    time_col: TimeCol = "timestamp",
    min_user_count: MinUser = 0,
    min_item_count: MinItem = 0,
):
    """Screen >= 150 settings by KL and Alignment/Discrimination, train the top K with LT/MT/SW, pick by validation."""
    from genpas.search import trained
    from genpas.search.campaign import STATES
    from genpas.search.run_store import LeftToOthers
    from genpas.train.config import TrainConfig

    values = job_config_values(config)  # its strategy is each run's, set by the command
    if model is not None and model not in ("sasrec", "hstu", "tiger"):
        raise GenpasError(f"unknown model {model!r} for search; use sasrec, hstu or tiger")
    if top_k < 1:
        raise GenpasError(f"--top-k must be >= 1, got {top_k}")
    if not 0 <= seed <= MAX_SEED:  # checked before the screening writes its cache
        raise GenpasError(f"--seed must be an integer from 0 to 2**64 - 1, got {seed}")
    if not 0 < keep_fraction <= 1:
        raise GenpasError(f"--keep-fraction must be in (0, 1], got {keep_fraction}")
    if samples < 1:
        raise GenpasError(f"--samples must be >= 1, got {samples}")
    # a flag given overrides the config; one left out keeps the config's value (named by file and key), else the default
    given = {**({} if model is None else {"model": model}), **({} if data is None else {"data": data}),
             "progress": progress,
             **data_fields(fmt, user_col, item_col, time_col, min_user_count, min_item_count, ctx)}
    base = TrainConfig.overridden(values, given, str(config or "options"))
    if base.model not in ("sasrec", "hstu", "tiger"):
        raise GenpasError(f"{config}: model: {base.model!r} cannot be searched; use sasrec, hstu or tiger")
    if time_budget is not None and budget_minutes is not None:
        raise GenpasError("give --time-budget only (--budget-minutes is its old spelling)")
    budget_minutes = time_budget if time_budget is not None else budget_minutes
    if prune_baselines and not prune:
        raise GenpasError("--prune-baselines applies with --prune only; add --prune")
    for name, value in (("prune_factor", prune_factor), ("prune_margin", prune_margin)):
        flag = "--" + name.replace("_", "-")
        if on_command_line(ctx, name) and not prune:
            raise GenpasError(f"{flag} applies with --prune only; add --prune")
        if not value >= 0:  # nan too
            raise GenpasError(f"{flag} must be >= 0, got {value}")
    factor = prune_factor if prune else None
    if budget_minutes is not None and not budget_minutes > 0:  # nan too
        raise GenpasError(f"--time-budget must be > 0 minutes (the whole search's), got {budget_minutes}")

    from genpas.outputs import data_inputs, output_dir

    if plan:
        output_dir(out, data_inputs(base.data), create=False)  # checked; a plan writes nothing
        rows = trained.plan(base, out, top_k, seed, budget_minutes, keep_fraction, samples, factor, prune_margin,
                           prune_baselines)
        for row in rows:
            typer.echo(f"  {row['state']:8s}  {row['name']:28s} {row['key']}{progress_text(row)}{plan_note(row)}")
        states = STATES + (("pruned",) if prune else ())
        counts = ", ".join(f"{sum(r['state'] == s for r in rows)} {s}" for s in states)
        typer.echo(f"{len(rows)} trainings: {counts}")
        return
    out = output_dir(out, data_inputs(base.data), create=False)  # the search creates it

    def announce(name, record):
        stopped = f", pruned after epoch {record['pruned']['epoch']}" if record.get("pruned") else ""
        typer.echo(f"{name:32s} valid ndcg@10 {record['valid']['ndcg@10']:.4f}  ({record['train_seconds']:.0f} s{stopped})")

    try:
        result = trained.search(base, out, top_k, seed, budget_minutes, keep_fraction, samples, on_result=announce,
                                wait=wait, prune_factor=factor, prune_margin=prune_margin,
                                prune_baselines=prune_baselines)
    except LeftToOthers as left:
        typer.echo(str(left))
        return
    typer.echo("")
    typer.echo(trained.format_search(result))
    typer.echo(f"wrote {out / 'search.json'}")
