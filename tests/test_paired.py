"""`genpas compare`: two runs user by user (genpas.train.paired)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.errors import GenpasError
from genpas.train.metrics import ranking_metrics
from genpas.train.paired import paired_difference, paired_ranks, user_metric, verdict


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


def test_paired_ranks_keeps_the_difference_of_the_users_metrics_and_names_the_side_ahead():
    a, b = np.array([1, 1, 2, 1, 30, 1]), np.array([4, 20, 2, 9, 30, 50])
    kept = paired_ranks(a, b, "recall@3")  # users' recall@3: a 1,1,1,1,0,1 and b 0,0,1,0,0,0
    assert kept["difference"] == pytest.approx(4 / 6) and (kept["a_better"], kept["b_better"]) == (4, 0)
    full = paired_difference(user_metric(a, "recall@3"), user_metric(b, "recall@3"), resamples=0)
    assert kept == {k: full[k] for k in kept} and set(kept) == {"difference", "standard_error", "z", "a_better",
                                                                "b_better", "verdict"}
    assert verdict(0.05, 0.02, "GenPAS", "MT") == "GenPAS ahead by more than two standard errors"
    assert verdict(-0.05, 0.02, "GenPAS", "MT") == "MT ahead by more than two standard errors"
    assert verdict(0.04, 0.02, "GenPAS", "MT") == "within two standard errors"  # exactly two: not beyond


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
    assert lines[0].endswith("(ranks from A's ranks.npz, B's ranks.npz)")
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
    import shutil  # a run holding another run's ranks.npz: its figures give it away

    shutil.copytree(runs / "a", tmp_path / "a2")
    shutil.copy(runs / "b" / "ranks.npz", tmp_path / "a2" / "ranks.npz")
    assert len({json.loads((runs / n / "metrics.json").read_text())["test"]["ndcg@10"] for n in "ab"}) == 2
    code, out = cli(["compare", "--run", str(tmp_path / "a2"), "--baseline", str(runs / "b")])
    assert code == 2 and len(out.err.strip().splitlines()) == 1 and "ranks.npz is not this run's" in out.err, out.err
    (runs / "b" / "best.safetensors").unlink()  # its ranks.npz still pairs it
    code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b"), "--json"])
    assert code == 0 and json.loads(out.out)["ranks_from"] == ["ranks.npz", "ranks.npz"]
    (runs / "b" / "ranks.npz").unlink()
    code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b")])
    assert code == 2 and "no best.safetensors, and no ranks.npz with the ranks asked for" in out.err


def test_compare_refuses_bad_options_before_ranking_and_tiger_past_its_beam(runs, cli, monkeypatch):
    from genpas.train import paired

    monkeypatch.setattr(paired, "_stored", lambda *a, **k: pytest.fail("ranks read before refusing"))
    monkeypatch.setattr(paired, "_from_model", lambda *a, **k: pytest.fail("ranked before refusing"))
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


def test_a_run_keeps_the_ranks_behind_its_metrics_and_compare_pairs_them(runs, cli, tmp_path):
    """ranks.npz holds every evaluated user's rank, whose metrics are the run's; compare reads them instead of
    ranking with the model, to the same numbers; `genpas evaluate` writes them again."""
    from genpas.train.ranks import read_ranks

    metrics = json.loads((runs / "a" / "metrics.json").read_text())
    ranks = read_ranks(runs / "a", metrics["data_sha256"])
    assert set(ranks) == {"valid_history_kept", "test_history_kept"}  # a run that keeps the history
    for which in ("valid", "test"):
        assert ranks[f"{which}_history_kept"].dtype == np.int32 and len(ranks[f"{which}_history_kept"]) == 40
        expected = {k: v for k, v in metrics[which].items() if "@" in k}
        assert ranking_metrics(ranks[f"{which}_history_kept"]) == pytest.approx(expected)
    args = ["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b"), "--json", "--resamples", "200"]
    code, out = cli(args)
    stored = json.loads(out.out)
    assert code == 0 and stored["ranks_from"] == ["ranks.npz", "ranks.npz"]
    kept = {name: (runs / name / "ranks.npz").read_bytes() for name in ("a", "b")}
    for name in ("a", "b"):
        (runs / name / "ranks.npz").unlink()
    code, out = cli(args)
    fresh = json.loads(out.out)
    assert code == 0 and fresh.pop("ranks_from") == ["best.safetensors"] * 2
    stored.pop("ranks_from")
    assert fresh == stored  # the same users, ranks, differences and interval
    code, _ = cli(["evaluate", "--run", str(runs / "a")])
    again = read_ranks(runs / "a")
    (runs / "a" / "ranks.npz").write_bytes(kept["a"])
    assert code == 0 and set(again) == set(ranks)
    assert all(np.array_equal(again[key], ranks[key]) for key in ranks)  # evaluate ranks as the training's end did


def test_excluded_runs_keep_both_protocols_and_damaged_ranks_are_one_line(tmp_path, cli):
    write_table(synthesize(SynthConfig(users=30, items=20, mean_length=8, seed=5)), tmp_path / "log.csv")
    for name in ("x", "y"):
        code, _ = cli(["train", "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / name), "--epochs", "1",
                       "--dim", "16", "--layers", "1", "--heads", "2", "--exclude-history", "--no-progress"])
        assert code == 0
    from genpas.train.ranks import read_ranks

    metrics = json.loads((tmp_path / "x" / "metrics.json").read_text())
    ranks = read_ranks(tmp_path / "x")
    assert set(ranks) == {f"{w}_history_{p}" for w in ("valid", "test") for p in ("excluded", "kept")}
    assert ranking_metrics(ranks["test_history_excluded"])["ndcg@10"] == pytest.approx(metrics["test"]["ndcg@10"])
    assert ranking_metrics(ranks["test_history_kept"])["ndcg@10"] == pytest.approx(
        metrics["test_history_kept"]["ndcg@10"])
    code, out = cli(["compare", "--run", str(tmp_path / "x"), "--baseline", str(tmp_path / "y"), "--keep-history",
                     "--json", "--resamples", "0"])
    y_kept = json.loads((tmp_path / "y" / "metrics.json").read_text())["test_history_kept"]["ndcg@10"]
    assert code == 0 and json.loads(out.out)["b"] == pytest.approx(y_kept)  # the history-kept ranks, stored
    assert json.loads(out.out)["ranks_from"] == ["ranks.npz", "ranks.npz"]
    good = (tmp_path / "y" / "ranks.npz").read_bytes()
    damages = [(good[: len(good) // 2], "cannot be read"), (b"not an archive", "cannot be read")]
    other = tmp_path / "other.npz"
    np.savez(other, data_sha256=np.array("0" * 64), test_history_excluded=np.array([1, 2], dtype=np.int32))
    damages.append((other.read_bytes(), "holds ranks of other data than the run's metrics.json"))
    np.savez(other, data_sha256=np.array(metrics["data_sha256"]), test_history_excluded=np.array([0, 2]))
    damages.append((other.read_bytes(), "test_history_excluded is not a list of ranks"))
    np.savez(other, test_history_excluded=np.array([1, 2]))
    damages.append((other.read_bytes(), "does not say which data its users come from"))
    for damage, message in damages:
        (tmp_path / "y" / "ranks.npz").write_bytes(damage)
        code, out = cli(["compare", "--run", str(tmp_path / "x"), "--baseline", str(tmp_path / "y")])
        assert code == 2 and len(out.err.strip().splitlines()) == 1 and message in out.err, (message, out.err)
        assert f"genpas evaluate --run {tmp_path / 'y'}" in out.err
    code, _ = cli(["evaluate", "--run", str(tmp_path / "y")])  # writes the file again, whole
    assert code == 0 and set(read_ranks(tmp_path / "y")) == {"valid_history_excluded", "test_history_excluded"}


def test_ranks_follow_the_best_checkpoint_through_a_resume_and_evaluate_adds_only_reproduced_ones(runs, cli, caplog):
    """The trainer writes ranks.npz whole at the end of every training, so a resumed run's file holds the ranks of
    its new best checkpoint only; `genpas evaluate` adds ranks only where they reproduce metrics.json, and its file
    has the same bytes as the training's."""
    from genpas.train.ranks import read_ranks

    code, _ = cli(["evaluate", "--run", str(runs / "a"), "--exclude-history"])  # a protocol the run did not report
    assert code == 0 and set(read_ranks(runs / "a")) == {"valid_history_kept", "test_history_kept"}
    code, _ = cli(["train", "--out", str(runs / "a"), "--resume", "--epochs", "4", "--no-progress"])
    metrics = json.loads((runs / "a" / "metrics.json").read_text())
    ranks = read_ranks(runs / "a", metrics["data_sha256"])
    assert code == 0 and metrics["epochs_run"] == 4 and set(ranks) == {"valid_history_kept", "test_history_kept"}
    for which in ("valid", "test"):
        expected = {k: v for k, v in metrics[which].items() if "@" in k}
        assert ranking_metrics(ranks[f"{which}_history_kept"]) == pytest.approx(expected, abs=0)
    written = (runs / "a" / "ranks.npz").read_bytes()
    (runs / "a" / "ranks.npz").unlink()
    code, _ = cli(["evaluate", "--run", str(runs / "a")])
    assert code == 0 and (runs / "a" / "ranks.npz").read_bytes() == written  # the same ranks, the same bytes
    older = dict(metrics)
    del older["data_sha256"]  # a run finished before metrics.json named its data: its ranks still pair it
    (runs / "a" / "metrics.json").write_text(json.dumps(older))
    code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b"), "--json"])
    assert code == 0 and json.loads(out.out)["ranks_from"] == ["ranks.npz", "ranks.npz"]
    (runs / "a" / "ranks.npz").unlink()
    code, _ = cli(["evaluate", "--run", str(runs / "a")])  # verified by its figures alone
    assert code == 0 and (runs / "a" / "ranks.npz").read_bytes() == written
    metrics["test"]["ndcg@10"] += 0.5  # a metrics.json the checkpoint does not reproduce
    (runs / "a" / "metrics.json").write_text(json.dumps(metrics))
    (runs / "a" / "ranks.npz").unlink()
    with caplog.at_level("WARNING"):
        code, _ = cli(["evaluate", "--run", str(runs / "a")])
    assert code == 0 and set(read_ranks(runs / "a")) == {"valid_history_kept"}
    assert "the ranks of test_history_kept do not reproduce its metrics.json" in caplog.text


def test_ranks_damaged_inside_the_archive_are_one_line(runs, cli, tmp_path):
    import zipfile

    good = (runs / "b" / "ranks.npz").read_bytes()
    flipped = bytearray(good)
    start = good.index(b"test_history_kept.npy") + 40  # inside that member's compressed bytes
    for i in range(start, start + 8):
        flipped[i] ^= 0xFF
    other = tmp_path / "odd.npz"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("data_sha256.npy", b"not an array")
    for damage in (bytes(flipped), other.read_bytes(), good[:-30]):
        (runs / "b" / "ranks.npz").write_bytes(damage)
        code, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b")])
        assert code == 2 and len(out.err.strip().splitlines()) == 1, out.err
        assert f"genpas evaluate --run {runs / 'b'}" in out.err and "ranks.npz" in out.err
    code, _ = cli(["evaluate", "--run", str(runs / "b")])  # replaces the damaged file
    code2, out = cli(["compare", "--run", str(runs / "a"), "--baseline", str(runs / "b"), "--json"])
    assert code == code2 == 0 and json.loads(out.out)["ranks_from"] == ["ranks.npz", "ranks.npz"]
