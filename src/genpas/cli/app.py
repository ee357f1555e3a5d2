"""The `genpas` command. Every user error surfaces as one line `error: ...` and exit code 2."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from genpas.cli.common import DataSpec, Format, ItemCol, MinItem, MinUser, NoCache, TimeCol, UserCol, load
from genpas.errors import GenpasError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="genpas: principled sequential data augmentation for generative recommenders.",
)


@app.command("data")
def data_cmd(
    data: DataSpec = "ml-100k",
    fmt: Format = None,
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    time_col: TimeCol = "timestamp",
    min_user_count: MinUser = 0,
    min_item_count: MinItem = 0,
    no_cache: NoCache = False,
    short_users: Annotated[str, typer.Option("--short-users", help="Users with < 3 events: 'train' or 'drop'.")] = "train",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
):
    """Summarise a dataset: users, items, interactions, lengths, density, leave-one-out split."""
    from genpas.data.summary import format_summary, summarize

    store = load(data, fmt, user_col, item_col, time_col, min_user_count, min_item_count, no_cache)
    summary = summarize(store, short_users)
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(f"dataset {data}")
        typer.echo(format_summary(summary))


@app.command("synth")
def synth_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv, .tsv or .parquet.")],
    users: Annotated[int, typer.Option("--users")] = 1000,
    items: Annotated[int, typer.Option("--items")] = 500,
    mean_length: Annotated[float, typer.Option("--mean-length")] = 20.0,
    min_length: Annotated[int, typer.Option("--min-length")] = 3,
    zipf: Annotated[float, typer.Option("--zipf", help="Popularity exponent.")] = 1.0,
    p_transition: Annotated[float, typer.Option("--p-transition")] = 0.5,
    p_repeat: Annotated[float, typer.Option("--p-repeat")] = 0.1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
):
    """Write a synthetic interaction log (Zipf popularity, item transitions, repeats)."""
    from genpas.data.synth import SynthConfig, synthesize, write_table
    from genpas.outputs import output_file

    out = output_file(out, (), overwrite)
    if seed < 0:
        raise GenpasError(f"--seed must be >= 0, got {seed}")
    cfg = SynthConfig(users, items, mean_length, min_length, zipf, p_transition, p_repeat, seed=seed)
    df = synthesize(cfg)
    write_table(df, out)
    typer.echo(f"wrote {df.height:,} interactions of {users:,} users over {items:,} items to {out}")


_argv: list[str] = []


def invocation() -> str:
    """The command line being run, as a user would type it (written into results for provenance)."""
    import shlex

    return shlex.join(["genpas", *(_argv or sys.argv[1:])])


def _register_optional_commands() -> None:
    """Commands of the later layers register themselves here (keeps start-up light for `genpas data`)."""
    import importlib

    for module in ("genpas.cli.engine_cmds", "genpas.cli.augment_cmds", "genpas.cli.analysis_cmds", "genpas.cli.train_cmds",
                   "genpas.cli.recommend_cmds", "genpas.cli.search_cmds", "genpas.cli.experiment_cmds"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


_register_optional_commands()


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


def plain_help(command) -> None:
    """Help without type tags (`<int>`, `<bool>`): the help text says what a value is; defaults stay shown."""
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)
    for param in getattr(command, "params", ()):
        if param.param_type_name == "option" and param.metavar is None:
            param.metavar = ""
    make_help_option = command.get_help_option

    def help_option(ctx):
        option = make_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    command.get_help_option = help_option


def command():
    """The click command behind `app`, as users see it."""
    cmd = typer.main.get_command(app)
    plain_help(cmd)
    return cmd


def _out_of_memory(exc: BaseException) -> bool:
    """An allocation that failed: Python's MemoryError, torch's OutOfMemoryError (CUDA, MPS), or the CPU allocator's
    RuntimeError."""
    text = str(exc)
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in text or "out of memory" in text.lower())


def main(argv: list[str] | None = None) -> None:
    """Entry point: typer handles usage errors (exit 2) itself; our own errors become one line and exit 2."""
    _argv[:] = list(argv) if argv is not None else sys.argv[1:]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # SIGTERM unwinds like Ctrl-C: `finally` blocks run, so no temporary file or half-written output stays behind.
    signal.signal(signal.SIGTERM, _terminate)
    from typer._click import exceptions as click_errors  # typer's own copy of click

    try:
        result = command().main(args=argv, prog_name="genpas", standalone_mode=False)
    except GenpasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click_errors.UsageError as exc:  # a mistyped flag or value: one line, as our own errors
        where = exc.ctx.command_path if exc.ctx is not None else "genpas"
        message = " ".join(exc.format_message().split())
        print(f"error: {message} (see '{where} --help')", file=sys.stderr)
        sys.exit(2)
    except click_errors.ClickException as exc:
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except OSError as exc:  # the file system refused after the checks (a full disk, a path gone read-only): one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        sys.exit(2)
    except (MemoryError, RuntimeError) as exc:  # torch.OutOfMemoryError is a RuntimeError
        if not _out_of_memory(exc):
            raise
        print("error: out of memory: the command needed more than this machine (or GPU) has free; a training run "
              "needs less with a smaller --batch-size, --dim, --layers or --max-len", file=sys.stderr)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)
