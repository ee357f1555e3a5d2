"""Bad input around runs, experiments and reports: one `error:` line, exit code 2, and nothing trained or written
before the refusal (the cases an audit of the CLI found slipping through)."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch

from genpas.data.synth import SynthConfig, synthesize, write_table

TINY = "dim: 8\nlayers: 1\nheads: 1\nmax_len: 6\nbatch_size: 32\nwarmup_steps: 2\nepochs: 1\nprogress: false\n"


@pytest.fixture
def tiny(tmp_path):
    write_table(synthesize(SynthConfig(users=40, items=20, mean_length=8, seed=3)), tmp_path / "log.csv")
    (tmp_path / "tiny.yaml").write_text(TINY)
    return tmp_path


def refused(cli, args, message):
    code, captured = cli([str(a) for a in args])
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err
    return lines[0]


def test_a_config_that_is_a_directory_or_not_text(tiny, cli):
    (tiny / "conf").mkdir()
    (tiny / "latin1.yaml").write_bytes("lr: 0.001 # d\xe9j\xe0\n".encode("latin-1"))
    for command in (["train", "--out", tiny / "r"], ["search", "--out", tiny / "s"],
                    ["experiment", "strategies", "--out", tiny / "e"]):
        refused(cli, [*command, "--data", tiny / "log.csv", "--config", tiny / "conf"], "conf: not a file")
        refused(cli, [*command, "--data", tiny / "log.csv", "--config", tiny / "latin1.yaml"], "not UTF-8 text")
    assert not any((tiny / n).exists() for n in ("r", "s", "e"))


def test_experiment_settings_are_checked_before_the_first_run_trains(tiny, cli):
    common = ["--data", tiny / "log.csv", "--config", tiny / "tiny.yaml", "--out", tiny / "e"]
    refused(cli, ["experiment", "strategies", "--strategies", "pop,mt,genpas", "--genpas", "100,1,1", *common],
            "--genpas '100,1,1': alpha = 100 is outside [-40, 40]")
    refused(cli, ["experiment", "strategies", "--strategies", "pop,mt,genpas", "--genpas", "nan,1,1", *common],
            "--genpas 'nan,1,1': alpha is NaN")
    refused(cli, ["experiment", "strategies", "--strategies", "pop,mt", "--seeds", "0,-1", *common],
            "--seeds must be >= 0, got '0,-1'")
    (tiny / "h4.yaml").write_text(TINY.replace("heads: 1", "heads: 4"))
    refused(cli, ["experiment", "model-size", "--dims", "8,6", "--depths", "1", "--data", tiny / "log.csv",
                  "--config", tiny / "h4.yaml", "--out", tiny / "e"],
            "--dims 8,6 / --depths 1: the size 6 x 1: --heads must divide --dim (6), got 4")
    (tiny / "search").mkdir()
    refused(cli, ["experiment", "strategies", "--search", tiny / "search", *common], "search: not a file")
    (tiny / "search.json").write_text(json.dumps({"best": {"alpha": 99, "beta": 0, "gamma": 0}}))
    refused(cli, ["experiment", "strategies", "--search", tiny / "search.json", *common], "not a search.json")
    assert not (tiny / "e").exists()  # nothing trained, not even the store's directory


def test_plans_and_stores_refuse_an_output_that_is_a_file_or_the_data(tiny, cli):
    refused(cli, ["search", "--plan", "--data", tiny / "log.csv", "--out", tiny / "log.csv"], "is an input")
    (tiny / "notes.txt").write_text("mine")
    refused(cli, ["search", "--plan", "--data", tiny / "log.csv", "--out", tiny / "notes.txt"], "is a file")
    refused(cli, ["experiment", "strategies", "--plan", "--data", tiny / "log.csv", "--out", tiny / "notes.txt"],
            "is a file")
    assert cli(["prepare", "--data", str(tiny / "log.csv"), "--out", str(tiny / "store")])[0] == 0
    before = sorted(p.name for p in (tiny / "store").iterdir())
    refused(cli, ["experiment", "strategies", "--strategies", "mt", "--config", tiny / "tiny.yaml",
                  "--data", tiny / "store", "--out", tiny / "store"], "is an input of this command")
    assert sorted(p.name for p in (tiny / "store").iterdir()) == before
    assert (tiny / "notes.txt").read_text() == "mine"


def test_a_damaged_log_or_checkpoint_of_a_run_to_resume(tiny, cli):
    run = tiny / "r"
    assert cli(["train", "--data", str(tiny / "log.csv"), "--config", str(tiny / "tiny.yaml"), "--out", str(run)])[0] == 0
    resume = ["train", "--resume", "--epochs", "2", "--data", tiny / "log.csv", "--config", tiny / "tiny.yaml",
              "--out", run]
    good_log, good_state = (run / "log.csv").read_bytes(), (run / "last.pt").read_bytes()
    (run / "log.csv").write_text("epoch,loss\nbad,row,extra\n")
    refused(cli, resume, "log.csv: damaged (a row without a whole-number epoch)")
    (run / "log.csv").write_bytes(good_log)
    torch.save([1, 2], run / "last.pt")
    refused(cli, resume, "last.pt: not a training state")
    (run / "last.pt").write_bytes(good_state)
    state = torch.load(run / "last.pt", weights_only=True)
    state["model"] = {"no.such.weight": torch.zeros(3)}  # a state of another model
    torch.save(state, run / "last.pt")
    refused(cli, resume, "last.pt: does not fit this run's model or optimizer")
    (run / "last.pt").write_bytes(good_state)
    assert cli([str(a) for a in resume])[0] == 0  # the same run, repaired, resumes


@pytest.mark.parametrize("column,values,message", [
    ("user_id", [["a"], ["b"], ["a"]], "column 'user_id' holds List(String) values; ids must be text or integers"),
    ("item_id", [b"\xff", b"x", b"y"], "column 'item_id' holds Binary values"),
    ("timestamp", [[1], [2], [3]], "the timestamp column holds List(Int64) values"),
])
def test_parquet_columns_of_unsupported_types(tmp_path, cli, column, values, message):
    frame = {"user_id": ["a", "b", "a"], "item_id": ["x", "y", "z"], "timestamp": [1, 2, 3], column: values}
    pl.DataFrame(frame).write_parquet(tmp_path / "t.parquet")
    refused(cli, ["data", "--data", tmp_path / "t.parquet"], message)


def test_analyze_writes_standard_json_and_refuses_what_it_would_ignore(tiny, cli):
    out = tiny / "a.json"
    refused(cli, ["analyze", "--data", tiny / "log.csv", "--out", out, "--plots", out], "is the --out file")
    refused(cli, ["analyze", "--data", tiny / "log.csv", "--engine", "polars", "--max-len", "5", "--out", out],
            "--max-len apply to the in-process analysis")
    assert not out.exists()
    assert cli(["analyze", "--data", str(tiny / "log.csv"), "--out", str(out)])[0] == 0

    def no_constants(name):
        raise ValueError(f"{name} is not JSON")

    result = json.loads(out.read_text(), parse_constant=no_constants)  # no -Infinity, which JSON lacks
    assert result["strategy"]["gamma"] == "-inf"


def test_a_write_that_fails_after_the_checks_is_one_line(tiny, cli, monkeypatch):
    import genpas.cli.common as common

    def full_disk(path, text):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(common, "write_text", full_disk)
    refused(cli, ["analyze", "--data", tiny / "log.csv", "--out", tiny / "a.json"],
            f"{tiny / 'a.json'}: No space left on device")


def test_a_cache_that_is_a_file(tmp_path, cli, monkeypatch):
    (tmp_path / "cache").write_text("not a directory")
    monkeypatch.setenv("GENPAS_CACHE", str(tmp_path / "cache"))
    refused(cli, ["data", "--data", "ml-100k"], "point GENPAS_CACHE at a writable directory")


def test_report_plots_follow_the_output_policy(tiny, cli):
    e = tiny / "e"
    common = ["--data", str(tiny / "log.csv"), "--config", str(tiny / "tiny.yaml"), "--out", str(e)]
    assert cli(["experiment", "strategies", "--strategies", "pop,mt", "--seeds", "0", *common])[0] == 0
    plot = tiny / "rep" / "results" / "r" / "strategies.png"
    plot.parent.mkdir(parents=True)
    plot.write_bytes(b"someone else's picture")
    refused(cli, ["experiment", "report", "--out", e, "--to", tiny / "rep" / "r.md"], "strategies.png already exists")
    assert plot.read_bytes() == b"someone else's picture" and not (tiny / "rep" / "r.md").exists()
    (tiny / "rep2").mkdir()
    (tiny / "rep2" / "results").write_text("a file")
    refused(cli, ["experiment", "report", "--out", e, "--to", tiny / "rep2" / "r.md"], "is a file, not a directory")
    assert cli(["experiment", "report", "--out", str(e), "--to", str(tiny / "rep" / "r.md"), "--overwrite"])[0] == 0
    assert plot.read_bytes().startswith(b"\x89PNG")
    assert cli(["experiment", "report", "--out", str(e), "--to", str(tiny / "rep" / "r.md")])[0] == 0  # regenerated
