"""`genpas experiment ...`: the paper's experiments (strategies over seeds, long tail, data efficiency, model size)
and the generated results report. See genpas/search/experiments.py."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from genpas.cli.app import app, invocation
from genpas.cli.common import (
    ConfigData,
    job_config_values,
    plan_note,
    progress_text,
    split_list,
    strategy_names,
    with_data_flags,
)
from genpas.errors import GenpasError
from genpas.train.config import MAX_SEED

experiment_app = typer.Typer(help="The paper's experiments; each writes DIR/<name>.json, .md and .png.",
                             no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")

Out = Annotated[Path, typer.Option("--out", help="Experiment directory, shared by the experiments (runs are reused).")]
Seeds = Annotated[str, typer.Option("--seeds", help="Comma-separated seeds, e.g. 0,1,2.")]
Genpas = Annotated[Optional[str], typer.Option("--genpas", help="alpha,beta,gamma of GenPAS (default: the setting "
                                               "of --search, else the documented default).")]
Search = Annotated[Optional[Path], typer.Option("--search", help="A search.json whose best setting GenPAS uses.")]
Epochs = Annotated[Optional[int], typer.Option("--epochs", help="Epochs per run at most (runs are bounded by epochs and "
                                               "patience, not time, so results do not depend on machine load); "
                                               "default: the training default (200).")]
Patience = Annotated[Optional[int], typer.Option("--patience", help="Epochs without validation gain before a run "
                                                 "stops; default: the training default.")]
Config = Annotated[Optional[Path], typer.Option("--config", help="YAML of training options for every run.")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress")]
Model = Annotated[Optional[str], typer.Option("--model", help="sasrec, hstu or tiger (unset options take the model's defaults); "
                                    "default: the --config's model, else sasrec.")]
Share = Annotated[bool, typer.Option("--share", help="One of several processes (here or on machines that see the same "
                                     "--out, with working file locks) working through this experiment: each trains "
                                     "the runs no other process holds, then waits for the rest (taking over any "
                                     "whose process died) and writes the results.")]
Wait = Annotated[bool, typer.Option("--wait/--no-wait", help="With --share: --no-wait trains only the runs no other "
                                    "process holds, then stops instead of waiting for theirs (the last process to "
                                    "finish writes the results), so a worker can go on to other work.")]
Plan = Annotated[bool, typer.Option("--plan", help="Train nothing: list the runs the experiment needs and whether each "
                                    "is finished, running, started (resumable) or pending.")]
DEFAULT_OUT = Path("results/experiments")



def parse_list(text: str, kind, option: str) -> tuple:
    try:
        values = tuple(kind(v) for v in split_list(text, option))
    except ValueError:
        raise GenpasError(f"{option}: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise GenpasError(f"{option}: give at least one value")
    twice = next((v for k, v in enumerate(values) if v in values[:k]), None)
    if twice is not None:  # a seed counted twice would weigh twice in every mean and standard error
        raise GenpasError(f"{option}: {twice} is given twice in {text!r}")
    return values


def genpas_setting(genpas: str | None, search: Path | None, trains_genpas: bool = True) -> tuple[float, float, float]:
    from genpas.augment import parse_bias
    from genpas.augment.strategy import genpas as genpas_family
    from genpas.search.compare import DEFAULT_GENPAS

    def checked(alpha, beta, gamma):  # in full, here, so that no run trains before a bad setting is refused
        point = genpas_family(alpha, beta, gamma)
        return point.alpha, point.beta, point.gamma

    if genpas is not None and search is not None:
        raise GenpasError("give --genpas or --search, not both (each names the GenPAS setting to train)")
    if genpas is not None:
        parts = genpas.split(",")
        if len(parts) != 3:
            raise GenpasError(f"--genpas: expected alpha,beta,gamma, got {genpas!r}")
        try:
            return checked(*(parse_bias(p.strip()) for p in parts))
        except GenpasError as exc:
            raise GenpasError(f"--genpas {genpas!r}: {exc}") from None
    if search is not None:
        if not search.exists():
            raise GenpasError(f"{search}: no such search result")
        if not search.is_file():
            raise GenpasError(f"{search}: not a file; give the search's search.json")
        from genpas.search.result_files import search_setting

        return search_setting(search, baseline_ok=not trains_genpas)
    return DEFAULT_GENPAS


def settings_from(data, seeds, genpas, search, epochs, patience, config, progress, model=None, data_flags=None,
                  trains_genpas: bool = True):
    from genpas.search.experiments import ExperimentSettings
    from genpas.train.config import TrainConfig

    if (epochs is not None and epochs < 1) or (patience is not None and patience < 1):
        raise GenpasError("need --epochs >= 1 and --patience >= 1")
    values = job_config_values(config)  # its strategy is each run's, set by the command
    # A flag given overrides the config; one left out keeps the config's value (named by file and key), else the
    # default.
    if model is not None and model not in ("sasrec", "hstu", "tiger"):
        raise GenpasError(f"--model: expected sasrec, hstu or tiger, got {model!r}")
    given = {**({} if model is None else {"model": model}), **({} if data is None else {"data": data}),
             "progress": progress, "time_budget_minutes": None, **(data_flags or {}),
             **({} if epochs is None else {"epochs": epochs}), **({} if patience is None else {"patience": patience})}
    base = TrainConfig.overridden(values, given, str(config or "options"))
    if base.model not in ("sasrec", "hstu", "tiger"):  # popularity is a strategy of the experiments, not a model
        raise GenpasError(f"{config}: model: expected sasrec, hstu or tiger, got {base.model!r}")
    seed_list = parse_list(seeds, int, "--seeds")
    if any(not 0 <= seed <= MAX_SEED for seed in seed_list):
        raise GenpasError(f"--seeds must be integers from 0 to 2**64 - 1, got {seeds!r}")
    return ExperimentSettings(base, seed_list, genpas_setting(genpas, search, trains_genpas), command=invocation())


def _store(out: Path, data: str):
    from genpas.outputs import data_inputs, output_dir
    from genpas.search.experiments import RunStore

    out = output_dir(out, data_inputs(data), create=False)  # created by the first write
    def announce(name, record):
        typer.echo(f"  {name:8s} seed {record['config']['seed']}: valid ndcg@10 {record['valid']['ndcg@10']:.4f}  "
                   f"test ndcg@10 {record['test']['ndcg@10']:.4f}  ({record['train_seconds']:.0f} s)")

    return RunStore(out, on_result=announce)


def _run(job, out: Path, share: bool, plan: bool, data: str, wait: bool = True) -> None:
    """Run an experiment (a function of the run store) on `data`: plainly, as one of several sharing processes, or
    as a plan."""
    from genpas.outputs import data_inputs, output_dir
    from genpas.search import campaign
    from genpas.search.experiment_report import TABLES
    from genpas.search.experiments import RunStore, save
    from genpas.search.run_store import LeftToOthers

    if share and plan:
        raise GenpasError("give only one of --plan and --share")
    if not wait and not share:
        raise GenpasError("--no-wait applies only with --share (workers sharing an experiment)")
    if plan:  # reads the directory, writes nothing
        output_dir(out, data_inputs(data), create=False)
        runs = campaign.plan(job, RunStore(out))
        for run in runs:
            typer.echo(f"  {run['state']:8s}  {run['key']}  seed {run['seed']}{progress_text(run)}{plan_note(run)}")
        counts = ", ".join(f"{sum(r['state'] == s for r in runs)} {s}" for s in campaign.STATES)
        typer.echo(f"{len(runs)} runs: {counts}")
        return
    store = _store(out, data)
    try:
        result = campaign.share(job, store, wait) if share else job(store)
    except LeftToOthers as left:
        typer.echo(str(left))
        return
    path, written = save(result, out)
    typer.echo("\n".join(TABLES[result["experiment"]](result)))
    if path in written:
        typer.echo(f"wrote {', '.join(str(p) for p in written)}")
    else:
        again = f"; drew again: {', '.join(str(p) for p in written)}" if written else ""
        typer.echo(f"unchanged: {path} (every run was finished already and the results are the same){again}")


@experiment_app.command("strategies")
@with_data_flags
def strategies_cmd(out: Out = DEFAULT_OUT, data: ConfigData = None, seeds: Seeds = "0,1,2", genpas: Genpas = None,
                   search: Search = None, epochs: Epochs = None, patience: Patience = None, config: Config = None,
                   progress: Progress = True, model: Model = None, share: Share = False, wait: Wait = True,
                   plan: Plan = False,
                   strategies: Annotated[str, typer.Option("--strategies", "--strategy", help="Comma-separated: pop, lt, mt, sw, "
                                                           "genpas.")] = "pop,lt,mt,sw,genpas", data_flags=None):
    """The headline: every strategy over several seeds, mean ± std, GenPAS against MT relative to the seed spread."""
    from genpas.search.experiments import run_strategies

    names = _names(strategies)
    settings = settings_from(data, seeds, genpas, search, epochs, patience, config, progress, model, data_flags,
                             trains_genpas="genpas" in names)
    _run(lambda store: run_strategies(settings, store, names), out, share, plan, settings.base.data, wait)


@experiment_app.command("long-tail")
@with_data_flags
def long_tail_cmd(out: Out = DEFAULT_OUT, data: ConfigData = None, seeds: Seeds = "0,1,2", genpas: Genpas = None,
                  search: Search = None, epochs: Epochs = None, patience: Patience = None, config: Config = None,
                  progress: Progress = True, model: Model = None,
                  share: Share = False, wait: Wait = True, plan: Plan = False, data_flags=None):
    """LT vs MT vs GenPAS by popularity third of the target item (reuses the runs of `strategies`)."""
    from genpas.search.experiments import run_long_tail

    settings = settings_from(data, seeds, genpas, search, epochs, patience, config, progress, model, data_flags)
    _run(lambda store: run_long_tail(settings, store), out, share, plan, settings.base.data, wait)


@experiment_app.command("data-efficiency")
@with_data_flags
def data_efficiency_cmd(out: Out = DEFAULT_OUT, data: ConfigData = None, seeds: Seeds = "0",
                        genpas: Genpas = None, search: Search = None, epochs: Epochs = None, patience: Patience = None,
                        config: Config = None, progress: Progress = True, model: Model = None,
                        share: Share = False, wait: Wait = True, plan: Plan = False,
                        fractions: Annotated[str, typer.Option("--fractions", help="Shares of the MT pair count.")]
                        = "0.01,0.05,0.1,0.2,1", data_flags=None):
    """GenPAS vs MT trained on a fixed set of pairs: a share of the MT pair count, drawn once."""
    from genpas.search.experiments import run_data_efficiency

    shares = parse_list(fractions, float, "--fractions")
    if any(not 0 < f <= 1 for f in shares):
        raise GenpasError("--fractions: every share must be in (0, 1]")
    settings = settings_from(data, seeds, genpas, search, epochs, patience, config, progress, model, data_flags)
    _run(lambda store: run_data_efficiency(settings, store, shares), out, share, plan, settings.base.data, wait)


@experiment_app.command("model-size")
@with_data_flags
def model_size_cmd(out: Out = DEFAULT_OUT, data: ConfigData = None, seeds: Seeds = "0", genpas: Genpas = None,
                   search: Search = None, epochs: Epochs = None, patience: Patience = None, config: Config = None,
                   progress: Progress = True, model: Model = None, share: Share = False, wait: Wait = True,
                   plan: Plan = False,
                   dims: Annotated[str, typer.Option("--dims", help="Embedding widths (at the reference depth).")]
                   = "32,64,128,256",
                   depths: Annotated[str, typer.Option("--depths", help="Layer counts (at the reference width).")]
                   = "1,2,4",
                   grid: Annotated[bool, typer.Option("--grid", help="Every width x depth instead of one factor at "
                                                      "a time.")] = False, data_flags=None):
    """GenPAS vs MT over embedding widths and depths (one factor at a time around 64 wide x 2 layers)."""
    from genpas.search.experiments import default_sizes, run_model_size

    widths, layers = parse_list(dims, int, "--dims"), parse_list(depths, int, "--depths")
    settings = settings_from(data, seeds, genpas, search, epochs, patience, config, progress, model, data_flags)
    sizes = [(w, n) for w in widths for n in layers] if grid else default_sizes(
        widths, layers, (settings.base.dim, settings.base.layers))
    for dim, depth in sizes:  # every size before the first run trains
        try:
            settings.config("mt", settings.seeds[0], dim=dim, layers=depth)
        except GenpasError as exc:
            raise GenpasError(f"--dims {dims} / --depths {depths}: the size {dim} x {depth}: {exc}") from None
    _run(lambda store: run_model_size(settings, store, sizes), out, share, plan, settings.base.data, wait)


@experiment_app.command("screening")
@with_data_flags
def screening_cmd(out: Out = DEFAULT_OUT, data: ConfigData = None, seeds: Seeds = "0,1", epochs: Epochs = None,
                  patience: Patience = None, config: Config = None, progress: Progress = True, model: Model = None,
                  share: Share = False, wait: Wait = True, plan: Plan = False,
                  settings_count: Annotated[int, typer.Option("--settings", help="Grid settings to train, one per "
                                                              "KL stratum (at least 3).")] = 24,
                  keep_fraction: Annotated[float, typer.Option("--keep-fraction", help="The screening's KL cut, as "
                                                               "in `genpas search`.")] = 0.2,
                  sample_seed: Annotated[int, typer.Option("--sample-seed", help="Seed of the stratified draw and "
                                                           "of the ratio estimates.")] = 0, data_flags=None):
    """Train a KL-stratified sample of the grid: Spearman of KL and of the ratio with validation NDCG@10."""
    from genpas.search.screening_study import check_size, run_screening_study

    check_size(settings_count)  # before any data is read
    if not 0 < keep_fraction <= 1:
        raise GenpasError("--keep-fraction must be in (0, 1]")
    if sample_seed < 0:
        raise GenpasError("--sample-seed must be >= 0")
    settings = settings_from(data, seeds, None, None, epochs, patience, config, progress, model, data_flags)
    _run(lambda store: run_screening_study(settings, store, settings_count, keep_fraction,
                                           sample_seed=sample_seed), out, share, plan, settings.base.data, wait)


@experiment_app.command("report")
def report_cmd(out: Out = DEFAULT_OUT,
               to: Annotated[Optional[Path], typer.Option("--to", help="Markdown report to write (plots go beside "
                                                          "it); default: OUT/report.md.")] = None,
               search: Search = None,
               runs: Annotated[Optional[list[Path]], typer.Option("--run", help="A run directory to tabulate as well "
                                                                  "(e.g. a TIGER run); repeatable.")] = None,
               overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file at --to that "
                                                       "is not an earlier report.")] = False):
    """Assemble the results report from the experiments in --out (and a search.json); no hand-typed numbers."""
    from genpas.outputs import output_file
    from genpas.search.experiment_report import figure_files, is_report, write_results_report

    if Path(out).exists() and not Path(out).is_dir():  # named as the flag the user gave, before --to's default
        raise GenpasError(f"--out {out} is a file; give the experiment directory (`genpas experiment ... --out`)")
    target = to if to is not None else out / "report.md"
    inputs = [*Path(out).glob("*.json"), Path(out) / "ledger.jsonl", search,
              *(Path(run) / name for run in runs or () for name in ("metrics.json", "config.yaml"))]
    # an earlier report, and the plots beside it, are replaced without asking (regenerating is the point); any other
    # file needs --overwrite
    replace = overwrite or is_report(target)
    target = output_file(target, inputs, overwrite=replace, option="--to", create=False)  # made once written
    if Path(out).is_dir():
        for figure in figure_files(out, target):
            output_file(figure, inputs, overwrite=replace, option="--to's plot", create=False)
    path = write_results_report(out, target, search, command=invocation(), runs=tuple(runs or ()))
    typer.echo(f"wrote {path}")


def _names(text: str) -> tuple[str, ...]:
    return strategy_names(text, ("pop", "lt", "mt", "sw", "genpas"))
