"""`genpas recommend`: top-K lists from a trained run (train/recommend.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from genpas.cli.app import app
from genpas.errors import GenpasError


def _read_ids(users: Optional[str], users_file: Optional[Path]) -> tuple[list[str] | None, str]:
    """The user ids asked for (None: all) and the option that named them."""
    if users is not None and users_file is not None:
        raise GenpasError("give --users or --users-file, not both")
    if users is not None:
        ids = [u.strip() for u in users.split(",")]
        if "" in ids and users.strip():
            raise GenpasError(f"--users: empty id at position {ids.index('') + 1} of {users!r}")
        return [u for u in ids if u], "--users"
    if users_file is None:
        return None, "--users"
    if not users_file.is_file():
        raise GenpasError(f"--users-file {users_file}: " + ("a directory; give a text file of user ids"
                                                           if users_file.is_dir() else "no such file"))
    try:
        text = users_file.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first id
    except (OSError, UnicodeDecodeError) as exc:
        raise GenpasError(f"--users-file {users_file}: cannot read it as UTF-8 text ({exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip()], f"--users-file {users_file}"


@app.command("recommend")
def recommend_cmd(
    run: Annotated[Path, typer.Option("--run", help="A run directory written by `genpas train` (or by a search or "
                                                    "experiment).")],
    out: Annotated[Path, typer.Option("--out", help="Output file: .csv or .parquet (user_id, rank, item_id, score), "
                                                    "or .jsonl (one object per user).")],
    k: Annotated[int, typer.Option("--k", help="Items per user.")] = 10,
    users: Annotated[Optional[str], typer.Option("--users", help="Comma-separated user ids, as the data spells "
                                                                 "them (default: every user).")] = None,
    users_file: Annotated[Optional[Path], typer.Option("--users-file", help="A text file of user ids, one per "
                                                                            "line.")] = None,
    exclude_history: Annotated[bool, typer.Option("--exclude-history/--keep-history",
                                                  help="Never recommend an item the user already has.")] = True,
    at: Annotated[Optional[float], typer.Option("--at", help="HSTU: the request time, in the data's time unit (epoch "
                                                         "seconds for date columns; default: each user's last "
                                                         "event time).")] = None,
    beam: Annotated[Optional[int], typer.Option("--beam", help="TIGER: the beam width (default: the run's; at least "
                                                           "--k).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Users scored at once, at most (fewer for large "
                                                                    "catalogues, to bound memory).")] = 512,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
):
    """Recommend each user's next K items with a saved run's best checkpoint, after the user's whole history."""
    from genpas.outputs import data_inputs, output_file
    from genpas.train.recommend import FORMATS, recommend_run, run_config, write_recommendations
    from genpas.train.run_dir import RUN_ENTRIES  # what a run directory holds: never an output, even with --overwrite

    if out.suffix.lower() not in FORMATS:
        raise GenpasError(f"--out {out}: unknown format {out.suffix or '(no suffix)'!r}; use {', '.join(FORMATS)}")
    cfg = run_config(run)
    if out.expanduser().resolve().parent == run.resolve() and out.name in RUN_ENTRIES:
        raise GenpasError(f"--out {out} is one of the run's own files; write the recommendations elsewhere")
    ids, option = _read_ids(users, users_file)
    paths = [p for p in (cfg.item_text, cfg.item_embeddings) if p and Path(p).suffix]
    inputs = [run / "config.yaml", run / "best.safetensors", *data_inputs(cfg.data), users_file, *paths]
    output_file(out, inputs, overwrite, create=False)  # before the work; its directories only once it succeeded
    recs, store = recommend_run(run, ids, k, exclude_history, device, batch_size, at, option, beam)
    written = write_recommendations(output_file(out, inputs, overwrite), recs, store)
    short = int((recs.items < 0).any(1).sum())
    typer.echo(json.dumps({"out": str(out), "users": int(len(recs.users)), "k": k, "recommendations": written,
                           "users_with_fewer_than_k": short, "exclude_history": exclude_history}))
