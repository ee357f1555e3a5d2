"""`genpas recommend`: top-K lists from a trained run (train/recommend.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from genpas.cli.app import app
from genpas.errors import GenpasError


def _read_ids(users: Optional[str], users_file: Optional[Path]) -> list[str] | None:
    if users is not None and users_file is not None:
        raise GenpasError("give --users or --users-file, not both")
    if users is not None:
        return [u.strip() for u in users.split(",") if u.strip()]
    if users_file is None:
        return None
    if not users_file.is_file():
        raise GenpasError(f"--users-file {users_file}: no such file")
    try:
        text = users_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GenpasError(f"--users-file {users_file}: cannot read it as text ({exc})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


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
    at: Annotated[Optional[float], typer.Option("--at", help="HSTU: the request time, in the data's time unit "
                                                         "(default: each user's last event time).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Users scored at once.")] = 512,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")] = False,
):
    """Recommend each user's next K items with a saved run's best checkpoint, after the user's whole history."""
    from genpas.outputs import output_file
    from genpas.train.build import build_model, load_split, pick_device
    from genpas.train.checkpoint import load_weights
    from genpas.train.config import TrainConfig
    from genpas.train.recommend import FORMATS, recommend, user_codes, write_recommendations

    if not (run / "config.yaml").is_file():
        raise GenpasError(f"--run {run}: no config.yaml there; give a run directory written by `genpas train`")
    if out.suffix.lower() not in FORMATS:
        raise GenpasError(f"--out {out}: unknown format {out.suffix or '(no suffix)'!r}; use {', '.join(FORMATS)}")
    if k < 1:
        raise GenpasError(f"--k must be >= 1, got {k}")
    if batch_size < 1:
        raise GenpasError(f"--batch-size must be >= 1, got {batch_size}")
    out = output_file(out, (run / "config.yaml", run / "best.safetensors"), overwrite)
    ids = _read_ids(users, users_file)
    cfg = TrainConfig.from_run(run / "config.yaml")
    split = load_split(cfg)
    codes = user_codes(split.full, ids)
    model, _ = build_model(cfg, split)
    if cfg.model != "pop":
        load_weights(run / "best.safetensors", model)
    target = pick_device(device)
    recs = recommend(model.to(target), split.full, codes, cfg.max_len, k, exclude_history, target, batch_size, at)
    written = write_recommendations(out, recs, split.full)
    short = int((recs.items < 0).any(1).sum())
    typer.echo(json.dumps({"out": str(out), "users": int(len(codes)), "k": k, "recommendations": written,
                           "users_with_fewer_than_k": short, "exclude_history": exclude_history}))
