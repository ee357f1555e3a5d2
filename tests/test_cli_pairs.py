"""The `genpas pairs` contract: keys, original ids, positions, truncation, exact probabilities, byte-identical seeds."""

from __future__ import annotations

import json

import pytest
from conftest import write_all_formats

from genpas.cli import main


def run(*args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code


@pytest.fixture
def log(tmp_path):
    return write_all_formats(tmp_path / "f")["csv"]


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exact_sw_on_whole_sequences(tmp_path, log):
    out = tmp_path / "sw.jsonl"
    assert run("pairs", "--data", log, "--split", "none", "--strategy", "sw", "--exact", "--out", out) == 0
    rows = read(out)
    assert len(rows) == 3 + 6 + 6  # windows of sequences of lengths 3, 4, 4
    assert sum(r["prob"] for r in rows) == pytest.approx(1.0, abs=1e-12)
    seqs = {"u1": ["a", "b", "007"], "u2": ["b", "c", "c", "a"], "u3": ["a", "007", "b", "c"]}
    for r in rows:
        assert set(r) == {"user", "k", "j", "input", "target", "prob"}
        seq = seqs[r["user"]]
        assert r["input"] == seq[r["j"] - 1 : r["k"] - 1] and r["target"] == seq[r["k"] - 1]


def test_loo_split_and_truncation(tmp_path, log):
    out = tmp_path / "mt.jsonl"
    assert run("pairs", "--data", log, "--strategy", "mt", "--exact", "--max-len", "1", "--out", out) == 0
    rows = read(out)
    # leave-one-out training parts: u1 ["a"], u2 ["b", "c"], u3 ["a", "007"] -> one MT pair each for u2, u3
    assert [(r["user"], r["input"], r["target"]) for r in rows] == [("u2", ["b"], "c"), ("u3", ["a"], "007")]


def test_same_seed_gives_a_byte_identical_file(tmp_path, log):
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    common = ["pairs", "--data", log, "--split", "none", "--strategy", "genpas", "--alpha", "1", "--beta", "inf",
              "--gamma", "-inf", "--num-pairs", "50"]
    assert run(*common, "--seed", "4", "--out", a) == 0
    assert run(*common, "--seed", "4", "--out", b) == 0
    assert run(*common, "--seed", "5", "--out", c) == 0
    assert a.read_bytes() == b.read_bytes()
    rows = read(a)
    assert len(rows) == 50 and all("prob" not in r for r in rows)
    assert all(r["j"] == 1 and r["k"] == {"u1": 3, "u2": 4, "u3": 4}[r["user"]] for r in rows)  # LT-like


def test_default_is_one_training_epoch_and_both_flags_are_refused(tmp_path, log, capsys):
    from genpas.augment import EpochSampler, PairDistribution, make_strategy
    from genpas.data import load_dataset
    from genpas.data.split import training_part

    assert run("pairs", "--data", log, "--strategy", "mt", "--seed", "3", "--out", tmp_path / "x.jsonl") == 0
    rows = read(tmp_path / "x.jsonl")
    store = training_part(load_dataset(log), "loo")
    u, k, j = EpochSampler(PairDistribution(store.lengths, make_strategy("mt")), seed=3).epoch(0)
    assert len(rows) == int(sum(max(n - 1, 0) for n in store.lengths))  # N_MT draws, as a pairs-mode epoch
    assert [(r["k"], r["j"]) for r in rows] == list(zip(k.tolist(), j.tolist()))
    assert run("pairs", "--data", log, "--exact", "--num-pairs", "5", "--out", tmp_path / "y.jsonl") == 2
    assert "--exact or --num-pairs N, not both" in capsys.readouterr().err
    assert not (tmp_path / "y.jsonl").exists()


def test_bad_bias_value(tmp_path, log, capsys):
    assert run("pairs", "--data", log, "--strategy", "genpas", "--alpha", "x", "--beta", "0", "--gamma", "0",
               "--exact", "--out", tmp_path / "x.jsonl") == 2
    assert "cannot read 'x' as a number" in capsys.readouterr().err
