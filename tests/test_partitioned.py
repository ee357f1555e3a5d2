"""Draws per user range (pairs at scale): exact against enumeration, and the same whatever the partitioning."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import polars as pl
import pytest
from scipy import stats
from test_sampler_sampling import LENGTHS, STRATEGIES, chi_square_pvalue

from genpas.augment import PairDistribution, genpas
from genpas.augment.partitioned import LEAF, PartitionedEpoch, user_ranges
from genpas.cli import main
from genpas.data.split import training_lengths
from genpas.data.store import SequenceStore
from genpas.engines import prepare


def by_ranges(epoch: PartitionedEpoch, edges: list[int]):
    parts = [epoch.draws(a, b) for a, b in zip(edges[:-1], edges[1:])]
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.label)
def test_partitioned_draws_follow_the_exact_distribution(strategy):
    dist = PairDistribution(LENGTHS, strategy)
    u, k, j, p = dist.enumerate()
    expected = {(a, b, c): d for a, b, c, d in zip(u.tolist(), k.tolist(), j.tolist(), p)}
    su, sk, sj = PartitionedEpoch(dist, 200_000, seed=7).draws(0, len(LENGTHS))
    assert len(su) == 200_000
    assert chi_square_pvalue(Counter(zip(su.tolist(), sk.tolist(), sj.tolist())), expected, len(su)) > 1e-3


def test_user_counts_are_multinomial():
    """Over many epochs, each user's count has the multinomial mean and variance, and counts add up to N."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=3 * LEAF + 5)  # a tree of several levels, some users without pairs
    dist = PairDistribution(lengths, genpas(1.0, 0, 0))
    n, epochs = 500, 400
    counts = np.stack([PartitionedEpoch(dist, n, seed=3, epoch=e).counts(0, len(lengths)) for e in range(epochs)])
    assert (counts.sum(axis=1) == n).all()
    assert (counts[:, dist.user_prob == 0] == 0).all()
    pooled = counts.sum(axis=0)[dist.user_prob > 0]
    expected = n * epochs * dist.user_prob[dist.user_prob > 0]
    assert stats.chisquare(pooled, expected).pvalue > 1e-3
    p = dist.user_prob
    var = counts.var(axis=0)[p > 0.01]
    want = (n * p * (1 - p))[p > 0.01]
    assert np.all(np.abs(var / want - 1) < 0.35)  # sample variance of 400 epochs: about +-0.07 relative spread


@pytest.mark.parametrize("edges", [[0, 200], [0, 1, 2, 3, 200], [0, 63, 64, 65, 129, 200], [0, 77, 150, 151, 200]])
def test_the_same_draws_whatever_the_partitioning(edges):
    lengths = np.random.default_rng(1).integers(1, 40, size=200)
    epoch = PartitionedEpoch(PairDistribution(lengths, genpas(0.5, 1, -1)), 9_999, seed=5, epoch=2)
    whole = epoch.draws(0, 200)
    parts = by_ranges(epoch, edges)
    for a, b in zip(whole, parts):
        assert np.array_equal(a, b)
    other_seed = PartitionedEpoch(epoch.dist, 9_999, seed=6, epoch=2).draws(0, 200)
    assert not np.array_equal(whole[1], other_seed[1])


def test_user_ranges_cover_every_user_once():
    lengths = np.random.default_rng(2).integers(0, 50, size=1000)
    for parts in (1, 3, 17, 1000, 5000):
        ranges = user_ranges(lengths, parts)
        assert ranges[0][0] == 0 and ranges[-1][1] == 1000
        assert all(b > a for a, b in ranges) and all(r[1] == s[0] for r, s in zip(ranges, ranges[1:]))


@pytest.fixture
def store_dir(tmp_path):
    rng = np.random.default_rng(4)
    rows = 3000
    pl.DataFrame({"user_id": [f"u{u}" for u in rng.integers(0, 150, rows)],
                  "item_id": [f"i{i}" for i in rng.integers(0, 90, rows)],
                  "timestamp": np.arange(rows)}).write_csv(tmp_path / "log.csv")
    prepare(tmp_path / "log.csv", tmp_path / "store")
    return tmp_path / "store"


def run(*args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


def test_parquet_pairs_hold_the_right_inputs_and_targets(tmp_path, store_dir):
    args = ["pairs", "--data", store_dir, "--engine", "polars", "--strategy", "genpas", "--alpha", "1", "--beta",
            "0", "--gamma", "0", "--max-len", "5", "--seed", "9"]
    assert run(*args, "--out", tmp_path / "a", "--partitions", "1") == 0
    assert run(*args, "--out", tmp_path / "b", "--partitions", "13") == 0
    a = pl.read_parquet(tmp_path / "a" / "*.parquet")
    b = pl.read_parquet(tmp_path / "b" / "*.parquet")
    assert a.equals(b)  # the same rows in the same order, whatever the number of parts
    assert len(list((tmp_path / "b").glob("*.parquet"))) == 13
    store = SequenceStore.load(store_dir)
    train = training_lengths(store.lengths, "loo")
    assert a.height == int(np.maximum(train - 1, 0).sum())  # one epoch: the Multi-Target pair count
    code = {u: c for c, u in enumerate(store.user_ids)}
    for row in a.sample(300, seed=0).iter_rows(named=True):
        seq = store.item_ids[store.sequence(code[row["user"]])][: train[code[row["user"]]]]
        k, j = row["k"], row["j"]
        assert 1 <= j < k <= len(seq)
        assert row["target"] == seq[k - 1]
        assert row["input"] == list(seq[max(j, k - 5) - 1 : k - 1])
    meta = json.loads((tmp_path / "a" / "_pairs.json").read_text())
    assert meta["pairs"] == a.height and meta["seed"] == 9


@pytest.mark.parametrize("extra, text", [
    (["--exact"], "--exact writes JSON lines"),
    (["--partitions", "0"], "--partitions must be at least 1"),
    (["--engine", "dask"], "unknown 'dask'"),
    (["--no-cache"], "needs a store"),
])
def test_bad_engine_pairs_options(tmp_path, capsys, extra, text):
    csv = tmp_path / "log.csv"
    csv.write_text("user_id,item_id,timestamp\nu,a,1\nu,b,2\nu,c,3\nu,d,4\n")
    engine = [] if "--engine" in extra else ["--engine", "polars"]
    assert run("pairs", "--data", csv, *engine, *extra, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert text in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_lt_is_one_pair_per_draw_at_the_last_position(store_dir, tmp_path):
    assert run("pairs", "--data", store_dir, "--engine", "polars", "--strategy", "lt", "--num-pairs", "500",
               "--out", tmp_path / "lt") == 0
    df = pl.read_parquet(tmp_path / "lt" / "*.parquet")
    store = SequenceStore.load(store_dir)
    train = dict(zip(store.user_ids, training_lengths(store.lengths, "loo")))
    assert df.height == 500 and all(r["k"] == train[r["user"]] and r["j"] == 1 for r in df.iter_rows(named=True))
