"""`genpas compare`: two runs user by user (genpas.train.paired)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.errors import GenpasError
from genpas.train.metrics import ranking_metrics
from genpas.train.paired import paired_difference, user_metric


def test_user_metrics_average_to_the_run_metrics():
    ranks = np.array([1, 2, 3, 7, 10, 11, 500, 1])
    expected = ranking_metrics(ranks, (5, 10))
    for metric in ("ndcg@5", "ndcg@10", "recall@5", "recall@10"):
        assert user_metric(ranks, metric).mean() == pytest.approx(expected[metric])
    assert list(user_metric(ranks, "recall@1")) == [1, 0, 0, 0, 0, 0, 0, 1]
    with pytest.raises(GenpasError, match="--metric must be ndcg@K or recall@K"):
        user_metric(ranks, "hr@10")


def test_the_paired_difference_its_standard_error_and_interval():
    a, b = np.array([1.0, 0.5, 0.0, 0.2, 0.0]), np.array([0.5, 0.5, 0.3, 0.0, 0.0])
    r = paired_difference(a, b, resamples=4000, seed=1)
    d = a - b  # 0.5, 0, -0.3, 0.2, 0
    assert r["difference"] == pytest.approx(0.08) and r["a"] - r["b"] == pytest.approx(0.08)
    assert r["standard_error"] == pytest.approx(np.std(d, ddof=1) / math.sqrt(5))
    assert (r["a_better"], r["b_better"], r["equal"]) == (2, 1, 2)
    lo, hi = r["ci95"]
    assert d.min() <= lo < 0.08 < hi <= d.max() and r["verdict"] == "within two standard errors"
    assert paired_difference(a, b, resamples=4000, seed=1)["ci95"] == r["ci95"]  # seeded
    assert paired_difference(a, b, resamples=0)["ci95"] is None
    clear = paired_difference(np.full(50, 0.3) + np.linspace(0, 0.01, 50), np.full(50, 0.1), resamples=0)
    assert clear["verdict"] == "A ahead by more than two standard errors"
    assert paired_difference(b, a, resamples=0)["difference"] == pytest.approx(-0.08)
    with pytest.raises(GenpasError, match="--resamples must be 0 .no bootstrap interval. or at least 100"):
        paired_difference(a, b, resamples=-1)


@pytest.fixture
def runs(tmp_path, cli):
    write_table(synthesize(SynthConfig(users=40, items=20, mean_length=8, seed=3)), tmp_path / "log.csv")
    for name, seed in (("a", "0"), ("b", "1")):
        code, _ = cli(["train", "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / name), "--epochs", "2",
                       "--dim", "16", "--layers", "1", "--heads", "2", "--seed", seed, "--no-progress"])
        assert code == 0
    return tmp_path


def test_compare_cli_pairs_the_users_of_two_runs(runs, cli):
    code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b"), "--json",
                     "--resamples", "500"])
    r = json.loads(out.out)
    metrics = [json.loads((runs / name / "metrics.json").read_text())["test"] for name in ("a", "b")]
    assert code == 0 and r["users"] == metrics[0]["users"] == 40
    assert (r["a"], r["b"]) == (pytest.approx(metrics[0]["ndcg@10"]), pytest.approx(metrics[1]["ndcg@10"]))
    assert r["a_better"] + r["b_better"] + r["equal"] == 40 and len(r["ci95"]) == 2
    assert r["split"] == "test" and r["metric"] == "ndcg@10" and r["exclude_history"] is False
    code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "a"), "--split", "valid",
                     "--metric", "recall@5"])
    lines = out.out.splitlines()
    assert code == 0 and lines[0].startswith("valid recall@5 over 40 users (history kept)")
    assert "A - B = +0.0000" in lines[1] and lines[2] == "users: A better 0, B better 0, equal 40"
    assert lines[3].startswith("within two standard errors")


def test_compare_refuses_what_cannot_be_paired(runs, cli, tmp_path):
    write_table(synthesize(SynthConfig(users=40, items=20, mean_length=8, seed=4)), tmp_path / "other.csv")
    code, _ = cli(["train", "--data", str(tmp_path / "other.csv"), "--out", str(tmp_path / "c"), "--epochs", "1",
                   "--dim", "16", "--layers", "1", "--heads", "2", "--exclude-history", "--no-progress"])
    assert code == 0
    (tmp_path / "empty").mkdir()
    cases = [
        (["--baseline", str(tmp_path / "c"), "--keep-history"], "were trained on different data"),
        (["--baseline", str(tmp_path / "c")], "ranks with the user's history and"),
        (["--baseline", str(tmp_path / "empty")], "no config.yaml there"),
        (["--baseline", str(runs / "b"), "--metric", "map@10"], "--metric must be ndcg@K or recall@K"),
        (["--baseline", str(runs / "b"), "--split", "train"], "--split must be valid or test"),
        (["--baseline", str(runs / "b"), "--resamples", "-2"], "--resamples must be 0"),
    ]
    for extra, message in cases:
        code, out = cli(["compare", "--run", str(runs / "a"), *extra])
        assert code == 2 and len(out.err.strip().splitlines()) == 1 and message in out.err, (extra, out.err)
    (runs / "b" / "best.safetensors").unlink()
    code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b")])
    assert code == 2 and "no best.safetensors" in out.err


def test_compare_refuses_bad_options_before_ranking_and_tiger_past_its_beam(runs, cli, monkeypatch):
    from genpas.train import paired

    monkeypatch.setattr(paired, "_ranks", lambda *a, **k: pytest.fail("ranked before refusing"))
    for extra, message in ((["--seed", "-1"], "--seed must be >= 0"),
                           (["--resamples", "5"], "--resamples must be 0 (no bootstrap interval) or at least 100")):
        code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b"), *extra])
        assert code == 2 and out.err.strip() == f"error: {message}, got {extra[1]}"
    config = (runs / "b" / "config.yaml").read_text()
    (runs / "b" / "config.yaml").write_text(config.replace("model: sasrec", "model: tiger").replace("beam: 20", "beam: 5"))
    code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b")])
    assert code == 2 and "TIGER ranks only its beam of 5 items, so ndcg@10 is not comparable" in out.err
    code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "nowhere")])
    assert code == 2 and f"--baseline {runs / 'nowhere'}: no config.yaml there" in out.err


def test_no_spread_gives_no_z_and_valid_json():
    r = paired_difference(np.full(10, 0.5), np.full(10, 0.4), resamples=0)
    assert r["z"] is None and r["verdict"] == "A ahead by more than two standard errors"
    json.loads(json.dumps(r, allow_nan=False))
