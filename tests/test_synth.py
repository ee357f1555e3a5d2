"""The synthetic generator: seeded, the requested shape, real sequential structure."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from genpas.data.preprocess import build_store
from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.errors import GenpasError


def test_same_seed_same_log_and_other_seed_differs():
    a = synthesize(SynthConfig(users=300, items=50, seed=1))
    b = synthesize(SynthConfig(users=300, items=50, seed=1))
    c = synthesize(SynthConfig(users=300, items=50, seed=2))
    assert a.equals(b) and not a.equals(c)


def test_shape_and_popularity_skew():
    cfg = SynthConfig(users=2000, items=300, mean_length=15, min_length=4, seed=0)
    df = synthesize(cfg)
    lengths = df.group_by("user_id").len()["len"].to_numpy()
    assert lengths.min() >= 4
    assert abs(lengths.mean() - 15) < 1.0
    counts = np.sort(df.group_by("item_id").len()["len"].to_numpy())[::-1]
    assert counts[: len(counts) // 10].sum() > 0.3 * counts.sum()  # Zipf: the top 10% of items take > 30%


def test_transitions_make_next_items_predictable():
    df = synthesize(SynthConfig(users=3000, items=200, p_transition=0.8, p_repeat=0.0, seed=4))
    store = build_store(df.rename({"user_id": "user", "item_id": "item", "timestamp": "time"}).with_columns(
        pl.col("user").cast(pl.Utf8), pl.col("item").cast(pl.Utf8), pl.col("time").cast(pl.Float64)))
    prev = store.items[:-1]
    nxt = store.items[1:]
    same_user = np.repeat(np.arange(store.num_users), store.lengths)
    pair = same_user[:-1] == same_user[1:]
    pairs = prev[pair].astype(np.int64) * store.num_items + nxt[pair]
    top = np.bincount(pairs).max()
    assert top > 20 * pair.sum() / store.num_items**2  # far above what independent draws would give


def test_timestamps_increase_within_users():
    df = synthesize(SynthConfig(users=100, items=30, seed=5))
    ok = df.group_by("user_id", maintain_order=True).agg((pl.col("timestamp").diff().drop_nulls() >= 0).all())
    assert ok["timestamp"].all()


def test_write_table_is_atomic_and_checks_extension(tmp_path):
    df = synthesize(SynthConfig(users=10, items=5))
    write_table(df, tmp_path / "x.parquet")
    assert pl.read_parquet(tmp_path / "x.parquet").equals(df)
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]
    with pytest.raises(GenpasError, match="unsupported output extension"):
        write_table(df, tmp_path / "x.xlsx")


def test_invalid_config():
    with pytest.raises(GenpasError):
        synthesize(SynthConfig(p_transition=0.9, p_repeat=0.5))


def test_cli_synth_then_data(tmp_path, capsys):
    from genpas.cli import main

    out = tmp_path / "syn.csv"
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--users", "50", "--items", "20", "--out", str(out)])
    assert exc.value.code == 0
    with pytest.raises(SystemExit):
        main(["data", "--data", str(out), "--json"])
    import json

    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["users"] == 50
