"""Shared fixtures: a small event log written in every supported format, and an isolated cache directory."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Property tests draw from a fixed seed: the suite is deterministic, as every sampler test must be.
settings.register_profile("deterministic", derandomize=True, deadline=None, print_blob=True)
settings.load_profile("deterministic")

# One small log. User "u2" has a timestamp tie (items "b" then "c" at t=200, source order must be kept),
# the last row duplicates an earlier event exactly (dropped), ids are non-numeric tokens with a leading zero.
EVENTS = [
    ("u1", "a", 100), ("u1", "b", 101), ("u2", "c", 300), ("u2", "b", 200), ("u2", "c", 200),
    ("u1", "007", 102), ("u3", "a", 50), ("u3", "007", 60), ("u2", "a", 400), ("u3", "b", 70),
    ("u3", "c", 80), ("u1", "a", 100),
]
# What every reader must agree on after preprocessing.
EXPECTED = {"users": 3, "items": 4, "interactions": 11}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test gets its own cache, except the built-in dataset which is shared (fetching costs a download)."""
    monkeypatch.setenv("GENPAS_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def cli(capsys):
    """Run `genpas ARGS` in-process: cli(args) -> (exit code, captured stdout and stderr)."""
    from genpas.cli import main

    def run(args):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(args)
        return exc.value.code, capsys.readouterr()

    return run


@pytest.fixture(scope="session")
def ml100k_cache(tmp_path_factory):
    return Path(os.environ.get("GENPAS_TEST_SHARED_CACHE") or tmp_path_factory.mktemp("shared-cache"))


@pytest.fixture
def ml100k(ml100k_cache, monkeypatch):
    """The built-in ml-100k store (fetched once per session)."""
    from genpas.data import load_dataset

    monkeypatch.setenv("GENPAS_CACHE", str(ml100k_cache))
    return load_dataset("ml-100k")


def write_all_formats(directory: Path, events=EVENTS) -> dict[str, Path]:
    """The same log in every format the readers support; returns format label -> path."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    paths = {}
    rows = "\n".join(f"{u},{i},{t}" for u, i, t in events)
    paths["csv"] = d / "log.csv"
    paths["csv"].write_text("user_id,item_id,timestamp,rating\n" + "\n".join(f"{u},{i},{t},5" for u, i, t in events) + "\n")
    paths["csv-semicolon"] = d / "log_semicolon.csv"
    paths["csv-semicolon"].write_text("user_id;item_id;timestamp\n" + rows.replace(",", ";") + "\n")
    paths["tsv"] = d / "log.tsv"
    paths["tsv"].write_text("user_id\titem_id\ttimestamp\n" + rows.replace(",", "\t") + "\n")
    import polars as pl

    paths["parquet"] = d / "log.parquet"
    pl.DataFrame({"user_id": [e[0] for e in events], "item_id": [e[1] for e in events],
                  "timestamp": [e[2] for e in events]}).write_parquet(paths["parquet"])
    paths["ml-100k"] = d / "u.data"
    paths["ml-100k"].write_text("\n".join(f"{u}\t{i}\t3\t{t}" for u, i, t in events) + "\n")
    (d / "ml1m").mkdir(exist_ok=True)
    paths["ml-1m"] = d / "ml1m" / "ratings.dat"
    paths["ml-1m"].write_text("\n".join(f"{u}::{i}::3::{t}" for u, i, t in events) + "\n")
    (d / "ml20m").mkdir(exist_ok=True)
    paths["ml-20m"] = d / "ml20m" / "ratings.csv"
    paths["ml-20m"].write_text("userId,movieId,rating,timestamp\n" + "\n".join(f"{u},{i},3.5,{t}" for u, i, t in events) + "\n")
    paths["amazon-2018"] = d / "Beauty.json.gz"
    with gzip.open(paths["amazon-2018"], "wt") as fh:
        for u, i, t in events:
            fh.write(json.dumps({"overall": 5.0, "reviewerID": u, "asin": i, "unixReviewTime": t, "reviewText": "ok"}) + "\n")
    paths["amazon-2014-literal"] = d / "reviews_Toys.json"
    paths["amazon-2014-literal"].write_text(
        "\n".join(repr({"reviewerID": u, "asin": i, "reviewerName": "O'Neil", "unixReviewTime": t}) for u, i, t in events) + "\n"
    )
    paths["amazon-2023"] = d / "All_Beauty.jsonl"
    paths["amazon-2023"].write_text(
        "\n".join(json.dumps({"user_id": u, "parent_asin": i, "asin": "x", "timestamp": t * 1000, "rating": 4}) for u, i, t in events) + "\n"
    )
    paths["amazon-csv"] = d / "ratings_Beauty.csv"
    paths["amazon-csv"].write_text("\n".join(f"{u},{i},5.0,{t}" for u, i, t in events) + "\n")
    paths["recbole"] = d / "log.inter"
    paths["recbole"].write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                + "\n".join(f"{u}\t{i}\t3\t{t}" for u, i, t in events) + "\n")
    return paths


@pytest.fixture
def all_formats(tmp_path):
    return write_all_formats(tmp_path / "formats")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


# A small training setup that a working model learns well beyond popularity (strong transitions, no repeats).
TRANSITION_TRAINING = dict(dim=32, layers=1, heads=2, max_len=8, batch_size=32, epochs=8, patience=8, progress=False,
                           warmup_steps=5, eval_batch_size=64)


@pytest.fixture(scope="module")
def transitions():
    """(split, base training options, popularity's metrics) on a synthetic log with strong item transitions."""
    import tempfile

    from genpas.data.split import leave_one_out
    from genpas.data.synth import SynthConfig, synthesize_store
    from genpas.train.config import TrainConfig
    from genpas.train.trainer import train

    split = leave_one_out(synthesize_store(SynthConfig(users=150, items=80, mean_length=12, zipf=0.3,
                                                       p_transition=0.9, p_repeat=0.0, seed=0)))
    with tempfile.TemporaryDirectory() as tmp:
        pop = train(TrainConfig(model="pop", **TRANSITION_TRAINING), Path(tmp) / "pop", split=split)
    return split, dict(TRANSITION_TRAINING), pop
