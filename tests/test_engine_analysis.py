"""Analysis at scale: the per-range sums give the in-process target distributions and KL."""

from __future__ import annotations

import json

import pytest
from test_partitioned import store_dir  # noqa: F401  (fixture)

from genpas.analysis import analyze
from genpas.augment import genpas, make_strategy
from genpas.cli import main
from genpas.data import load_dataset
from genpas.engines.analysis import AnalysisJob, analyze_at_scale


@pytest.mark.parametrize("strategy", [make_strategy("lt"), make_strategy("mt"), make_strategy("sw"),
                                      genpas(0.5, 1, -1), genpas(-1, 2, 0)], ids=lambda s: s.label)
@pytest.mark.parametrize("split, eval_on", [("loo", "valid"), ("loo", "test"), ("none", "valid")])
def test_engine_analysis_equals_in_process(store_dir, strategy, split, eval_on):  # noqa: F811
    mine = analyze_at_scale(AnalysisJob(str(store_dir), strategy, split, eval_on), "polars", partitions=5)
    theirs = analyze(load_dataset(store_dir), strategy, split, eval_on, samples=1)
    assert mine["kl"] == pytest.approx(theirs["kl"], rel=1e-12, abs=1e-12)
    assert mine["support_pairs"] == theirs["support_pairs"]
    assert mine["eval_distribution"] == pytest.approx(theirs["eval_distribution"], rel=1e-12)
    assert mine["target_distribution"] == pytest.approx(theirs["target_distribution"], rel=1e-9, abs=1e-15)


def test_the_partitioning_does_not_change_the_numbers(store_dir):  # noqa: F811
    job = AnalysisJob(str(store_dir), genpas(0.5, 0, 0))
    one, many = analyze_at_scale(job, "polars", partitions=1), analyze_at_scale(job, "polars", partitions=40)
    assert one["kl"] == pytest.approx(many["kl"], rel=1e-12)


def test_cli_engine_analysis_on_a_built_in_dataset(tmp_path, capsys, ml100k):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--data", "ml-100k", "--engine", "polars", "--strategy", "mt", "--out", str(tmp_path / "a.json")])
    assert exc.value.code == 0
    result = json.loads((tmp_path / "a.json").read_text())
    assert result["kl"] == pytest.approx(analyze(ml100k, make_strategy("mt"), samples=1)["kl"], rel=1e-12)


@pytest.mark.parametrize("extra, text", [(["--plots", "p"], "--plots draws in process"),
                                        (["--partitions", "0"], "--partitions must be"),
                                        (["--smoothing", "nan"], "--smoothing must be")])
def test_bad_engine_analysis_options(tmp_path, capsys, store_dir, extra, text):  # noqa: F811
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--data", str(store_dir), "--engine", "polars", *extra, "--out", str(tmp_path / "a.json")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and text in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.json").exists()
