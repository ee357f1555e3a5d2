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
            "--seeds must be integers from 0 to 2**64 - 1, got '0,-1'")
    refused(cli, ["experiment", "strategies", "--strategies", "pop,mt", "--seeds", f"0,{2**64}", *common],
            f"--seeds must be integers from 0 to 2**64 - 1, got '0,{2**64}'")
    assert not (tiny / "e").exists()  # nothing written, no run's lock left behind
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
    (run / "last.pt").write_bytes(b"")  # a file emptied by a full disk: its reader's error has no message
    refused(cli, resume, "last.pt: unreadable training state (empty or cut short); delete it to train from scratch")
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


def test_the_main_job_reuses_a_run_only_on_the_same_data_and_retrains_on_fresh(tiny, cli):
    job = ["run", "--config", tiny / "tiny.yaml", "--strategies", "mt", "--out", tiny / "J", "--no-progress",
           "--data", tiny / "log.csv"]
    assert cli([str(a) for a in job])[0] == 0
    first = json.loads((tiny / "J" / "results.json").read_text())["results"]["MT"]["test"]
    write_table(synthesize(SynthConfig(users=40, items=20, mean_length=8, seed=9)), tiny / "log.csv")
    assert cli([str(a) for a in job])[0] == 0  # other data behind the same name: trained again, not reused
    metrics = json.loads((tiny / "J" / "mt" / "metrics.json").read_text())
    assert json.loads((tiny / "J" / "results.json").read_text())["results"]["MT"]["test"] != first
    best = (tiny / "J" / "mt" / "best.safetensors").stat().st_mtime_ns
    assert cli([str(a) for a in job])[0] == 0  # the same data: reused
    assert (tiny / "J" / "mt" / "best.safetensors").stat().st_mtime_ns == best
    assert cli([str(a) for a in job] + ["--fresh"])[0] == 0  # --fresh: trained again from scratch
    assert (tiny / "J" / "mt" / "best.safetensors").stat().st_mtime_ns != best
    assert json.loads((tiny / "J" / "mt" / "metrics.json").read_text())["test"] == metrics["test"]  # same seed, data
    (tiny / "J" / "mt" / "notes.txt").write_text("mine")
    refused(cli, [*job, "--fresh"], "holds files that are no run's (notes.txt)")
    assert (tiny / "J" / "mt" / "notes.txt").read_text() == "mine" and (tiny / "J" / "mt" / "last.pt").exists()


def test_the_main_job_takes_the_budget_from_its_config_and_checks_every_strategy_first(tiny, cli):
    (tiny / "budget.yaml").write_text(TINY.replace("epochs: 1", "epochs: 3") + "time_budget_minutes: 0.0001\n")
    assert cli(["run", "--config", str(tiny / "budget.yaml"), "--strategies", "mt", "--data", str(tiny / "log.csv"),
                "--out", str(tiny / "B")])[0] == 0
    saved = (tiny / "B" / "mt" / "config.yaml").read_text()
    assert "time_budget_minutes: 0.0001" in saved and "progress: false" in saved
    (tiny / "classic.yaml").write_text(TINY + "mode: pairs\nclassic: true\n")
    refused(cli, ["run", "--config", tiny / "classic.yaml", "--strategies", "pop,lt,genpas", "--data",
                  tiny / "log.csv", "--out", tiny / "C"], "--strategies genpas: --classic needs mode pairs and strategy lt, mt or sw")
    (tiny / "tiger.yaml").write_text(TINY.replace("heads: 1", "heads: 2") + "model: tiger\n")
    refused(cli, ["run", "--config", tiny / "tiger.yaml", "--data", tiny / "log.csv", "--out", tiny / "C"],
            "compares augmentations of SASRec or HSTU, not --model tiger")
    assert not (tiny / "C").exists()


@pytest.mark.parametrize("flags,message", [
    (["--negative-sampling", "popularity"], "--negative-sampling popularity needs negatives N > 0"),
    (["--mode", "pairs", "--classic", "--num-pairs", "20"], "--classic draws every pair once an epoch; drop --num-pairs"),
    (["--mode", "pairs", "--classic", "--fixed-budget"], "drop --fixed-budget"),
    (["--dim", "1000000000"], "--dim must be <= 1000000"),
    (["--max-len", "1000000000000000000"], "--max-len must be <= 1000000"),
])
def test_options_that_would_be_ignored_or_cannot_be_built(tiny, cli, flags, message):
    refused(cli, ["train", "--data", tiny / "log.csv", "--config", tiny / "tiny.yaml", *flags,
                  "--out", tiny / "n1" / "n2" / "run"], message)
    assert not (tiny / "n1").exists()


def test_a_refused_command_leaves_no_directory_behind(tiny, cli):
    for args in (["train", "--data", tiny / "nosuch.csv", "--out", tiny / "a1" / "a2" / "run"],
                 ["run", "--data", tiny / "nosuch.csv", "--out", tiny / "b1" / "b2" / "J"],
                 ["prepare", "--data", tiny / "nosuch.csv", "--out", tiny / "c1" / "c2" / "st"],
                 ["pairs", "--data", tiny / "log.csv", "--num-pairs", "0", "--out", tiny / "d1" / "d2" / "p.jsonl"],
                 ["synth", "--users", "0", "--out", tiny / "e1" / "e2" / "s.csv"]):
        code, captured = cli([str(a) for a in args])
        assert code == 2 and captured.err.startswith("error: "), captured.err
    assert sorted(p.name for p in tiny.iterdir()) == ["log.csv", "tiny.yaml"]


def test_flags_that_the_data_or_engine_would_ignore_are_refused(tiny, cli):
    assert cli(["prepare", "--data", str(tiny / "log.csv"), "--out", str(tiny / "store")])[0] == 0
    refused(cli, ["data", "--data", tiny / "store", "--user-col", "foo"], "is a prepared store, read already: "
            "--user-col apply to reading a file")
    refused(cli, ["train", "--data", tiny / "store", "--format", "csv", "--out", tiny / "r"], "--format apply")
    refused(cli, ["data", "--data", "ml-100k", "--time-col", "ts"], "ml-100k is a built-in dataset, read already")
    refused(cli, ["pairs", "--data", tiny / "log.csv", "--partitions", "3", "--out", tiny / "p.jsonl"],
            "--partitions applies with --engine")
    refused(cli, ["prepare", "--data", tiny / "log.csv", "--spark-master", "spark://x:7077", "--out", tiny / "s2"],
            "--spark-master applies with --engine spark; this command runs on polars")
    refused(cli, ["analyze", "--data", tiny / "log.csv", "--spark-master", "x", "--out", tiny / "a.json"],
            "this command runs in process")
    assert not any((tiny / n).exists() for n in ("r", "p.jsonl", "s2", "a.json"))


def test_tiger_text_options_apply_to_text_embeddings_only(tiny, cli):
    base = ["train", "--model", "tiger", "--data", tiny / "log.csv", "--levels", "2", "--codebook-size", "4",
            "--dim", "8", "--heads", "2", "--epochs", "1", "--out", tiny / "t"]
    refused(cli, [*base, "--item-embeddings", "cooccurrence", "--item-text", tiny / "log.csv"],
            "--item-text apply to text embeddings; this run's come from cooccurrence")
    import numpy as np

    np.save(tiny / "empty.npy", np.zeros((20, 0), dtype=np.float32))
    refused(cli, [*base, "--item-embeddings", tiny / "empty.npy"], "one row per item")
    assert not (tiny / "t").exists()


def test_an_experiment_trains_again_when_its_data_changed_under_the_same_name(tiny, cli):
    command = ["experiment", "strategies", "--strategies", "mt", "--seeds", "0", "--data", str(tiny / "log.csv"),
               "--config", str(tiny / "tiny.yaml"), "--out", str(tiny / "e")]
    assert cli(command)[0] == 0
    first = json.loads((tiny / "e" / "strategies.json").read_text())
    assert cli(command)[0] == 0  # the same data: reused, the same result
    assert json.loads((tiny / "e" / "strategies.json").read_text())["strategies"] == first["strategies"]
    write_table(synthesize(SynthConfig(users=40, items=20, mean_length=8, seed=9)), tiny / "log.csv")
    assert cli(command)[0] == 0
    again = json.loads((tiny / "e" / "strategies.json").read_text())
    assert again["strategies"] != first["strategies"]  # trained on the new data, not the stale record
    records = [json.loads(line) for line in (tiny / "e" / "ledger.jsonl").read_text().splitlines()]
    assert len(records) == 2 and records[0]["data_sha256"] != records[1]["data_sha256"]


def test_saved_runs_of_earlier_versions_are_read_as_they_were_trained(tiny, cli, caplog):
    from genpas.train.config import TrainConfig
    from genpas.train.run_dir import fresh_or_resumable

    run = tiny / "J" / "mt"
    job = ["run", "--config", str(tiny / "tiny.yaml"), "--strategies", "mt", "--out", str(tiny / "J"), "--no-progress",
           "--data", str(tiny / "log.csv")]
    assert cli(job)[0] == 0
    assert cli(["evaluate", "--run", str(run)])[0] == 0  # writes evaluation.json into the run...
    fresh_or_resumable(TrainConfig.from_run(run / "config.yaml"), run)  # ...which a job still takes for the run's
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["data_sha256"]  # a result written before runs kept their data's fingerprint
    (run / "metrics.json").write_text(json.dumps(metrics))
    best = (run / "best.safetensors").stat().st_mtime_ns
    assert cli(job)[0] == 0 and (run / "best.safetensors").stat().st_mtime_ns == best  # reused, not retrained
    saved = (run / "config.yaml").read_text().replace("- 5\n", "- 20\n")  # ks [20, 10]: allowed before 5 was needed
    (run / "config.yaml").write_text(saved)
    with caplog.at_level("WARNING"):
        assert TrainConfig.from_run(run / "config.yaml").ks == (20, 10)
    assert "ks: must be integers >= 1 including 5 and 10" in caplog.text and "read as it is" in caplog.text
    refused(cli, ["train", "--config", run / "config.yaml", "--out", tiny / "new"], "including 5 and 10")


def test_a_failed_start_removes_only_the_empty_directories_it_made(tmp_path):
    from genpas.outputs import remove_empty_parents

    (tmp_path / "new" / "a" / "run").mkdir(parents=True)
    (tmp_path / "new" / "b").mkdir()  # another process's run, started meanwhile
    remove_empty_parents(tmp_path / "new" / "a" / "run", tmp_path / "new")
    assert (tmp_path / "new" / "a" / "run").exists()  # the path itself is the caller's to remove
    (tmp_path / "new" / "a" / "run").rmdir()
    remove_empty_parents(tmp_path / "new" / "a" / "run", tmp_path / "new")
    assert not (tmp_path / "new" / "a").exists() and (tmp_path / "new" / "b").is_dir()


def test_a_store_as_the_source_of_prepare_and_a_store_damaged_past_its_counts(tiny, cli):
    assert cli(["prepare", "--data", str(tiny / "log.csv"), "--out", str(tiny / "store")])[0] == 0
    refused(cli, ["prepare", "--data", tiny / "store", "--out", tiny / "again"], "a store that `genpas prepare` wrote")
    manifest = json.loads((tiny / "store" / "manifest.json").read_text())
    for key, value in (("stats", 5), ("options", [1])):
        (tiny / "store" / "manifest.json").write_text(json.dumps({**manifest, key: value}))
        refused(cli, ["data", "--data", tiny / "store", "--min-user-count", "3"], f"damaged manifest (TypeError: '{key}'")
    (tiny / "store" / "manifest.json").unlink()  # an interrupted write: the arrays without their manifest
    refused(cli, ["data", "--data", tiny / "store"], "no manifest.json, so not a complete store")
    assert not (tiny / "again").exists()


def test_a_report_refuses_a_field_only_its_plots_read_before_writing_anything(tiny, cli):
    e = tiny / "e"
    assert cli(["experiment", "strategies", "--strategies", "pop,mt", "--seeds", "0", "--data", str(tiny / "log.csv"),
                "--config", str(tiny / "tiny.yaml"), "--out", str(e)])[0] == 0
    good = json.loads((e / "strategies.json").read_text())
    for row, value in (("curves", [[[1, 2, 3]]]), ("std", "x")):
        result = json.loads(json.dumps(good))
        if row == "curves":
            result["strategies"]["mt"]["curves"] = value  # a validation curve of (step, ndcg) points, damaged
        else:
            result["strategies"]["mt"]["valid"]["ndcg@10"]["std"] = value  # drawn as an error bar only
        (e / "strategies.json").write_text(json.dumps(result))
        refused(cli, ["experiment", "report", "--out", e, "--to", tiny / "rep" / "r.md"],
                f"{e / 'strategies.json'}: a field is missing or malformed")
        assert not (tiny / "rep").exists()


def test_a_runs_config_that_is_empty_or_not_a_mapping_or_inconsistent(tiny, cli):
    run = tiny / "r"
    assert cli(["train", "--data", str(tiny / "log.csv"), "--config", str(tiny / "tiny.yaml"), "--out", str(run)])[0] == 0
    saved = (run / "config.yaml").read_text()
    for text, message in (("", "config.yaml: empty, so not the config a run writes"),  # not read as the defaults
                          ("[]\n", "config.yaml: expected a mapping of option: value"),
                          ("false\n", "config.yaml: expected a mapping of option: value"),
                          (saved.replace("dim: 8", "dim: 9").replace("heads: 1", "heads: 2"),
                           f"{run / 'config.yaml'}: heads: must divide dim (9), got 2")):  # no flag was given
        (run / "config.yaml").write_text(text)
        for command in (["evaluate", "--run", run], ["recommend", "--run", run, "--out", tiny / "rec.csv"]):
            refused(cli, command, message)
    (tiny / "false.yaml").write_text("false\n")
    refused(cli, ["train", "--data", tiny / "log.csv", "--config", tiny / "false.yaml", "--out", tiny / "r2"],
            "false.yaml: expected a mapping of option: value")
    assert not (tiny / "rec.csv").exists() and not (tiny / "r2").exists()


def test_analyze_replaces_a_plot_already_in_plots_with_overwrite_only(tiny, cli):
    (tiny / "p").mkdir()
    (tiny / "p" / "kl_heatmap.png").write_bytes(b"someone else's picture")
    command = ["analyze", "--data", tiny / "log.csv", "--samples", "1", "--out", tiny / "a.json", "--plots", tiny / "p"]
    refused(cli, command, f"{tiny / 'p' / 'kl_heatmap.png'} already exists; pass --overwrite to replace it")
    assert (tiny / "p" / "kl_heatmap.png").read_bytes() == b"someone else's picture" and not (tiny / "a.json").exists()
    assert cli([str(a) for a in command] + ["--overwrite"])[0] == 0
    assert (tiny / "p" / "kl_heatmap.png").read_bytes().startswith(b"\x89PNG")


def test_evaluate_refuses_a_finished_runs_metrics_json_it_cannot_read(tiny, cli):
    run = tiny / "r"
    assert cli(["train", "--data", str(tiny / "log.csv"), "--config", str(tiny / "tiny.yaml"), "--out", str(run)])[0] == 0
    for text, message in (("{", "is not valid JSON"), ("[]", "is not the metrics.json a run writes")):
        (run / "metrics.json").write_text(text)
        refused(cli, ["evaluate", "--run", run], f"{run / 'metrics.json'} {message}")
    assert not (run / "evaluation.json").exists()


def test_evaluate_refuses_data_changed_since_training_though_its_items_are_the_same(tiny, cli):
    run = tiny / "r"
    assert cli(["train", "--data", str(tiny / "log.csv"), "--config", str(tiny / "tiny.yaml"), "--out", str(run)])[0] == 0
    evaluation = run / "evaluation.json"
    log = pl.read_csv(tiny / "log.csv")
    later = log.head(30).with_columns(pl.col(log.columns[-1]) + 10**8)  # later events of known users and items
    pl.concat([log, later]).write_csv(tiny / "log.csv")
    refused(cli, ["evaluate", "--run", run], f"{run}: its data, {tiny / 'log.csv'} (the run's config.yaml), has changed since the run was trained")
    (run / "metrics.json").unlink()  # an unfinished run: its last.pt names the data
    refused(cli, ["evaluate", "--run", run], f"{run}: its data, {tiny / 'log.csv'} (the run's config.yaml), has changed since the run was trained")
    assert not evaluation.exists()


@pytest.mark.parametrize("alpha,message", [("x", "best.alpha: cannot read 'x' as a number"),
                                           (None, "best.alpha: should be a number, inf or -inf, is None"),
                                           (True, "best.alpha: should be a number, inf or -inf, is True")])
def test_a_report_refuses_a_search_json_whose_pick_the_experiments_refuse(tiny, cli, alpha, message):
    from pathlib import Path

    search = json.loads((Path(__file__).parents[1] / "docs" / "results" / "search-ml-100k-seed0.json").read_text())
    search["best"]["alpha"] = alpha
    (tiny / "search.json").write_text(json.dumps(search))
    (tiny / "e").mkdir()
    for command in (["experiment", "report", "--out", tiny / "e", "--to", tiny / "r.md"],
                    ["experiment", "strategies", "--plan", "--data", tiny / "log.csv", "--out", tiny / "e"]):
        refused(cli, [*command, "--search", tiny / "search.json"], f"{tiny / 'search.json'}: not a search.json ({message}")
    assert not (tiny / "r.md").exists() and not (tiny / "results").exists()


def test_a_search_that_picked_a_baseline_gives_no_genpas_setting_to_train(tiny, cli):
    from pathlib import Path

    search = json.loads((Path(__file__).parents[1] / "docs" / "results" / "search-ml-100k-seed0.json").read_text())
    search["best"] |= {"strategy": "sw", "alpha": 2.0, "beta": 1.0, "gamma": 0.0}  # SW's biases, not GenPAS(2, 1, 0)
    (tiny / "search.json").write_text(json.dumps(search))
    refused(cli, ["experiment", "strategies", "--plan", "--data", tiny / "log.csv", "--out", tiny / "e", "--search",
                  tiny / "search.json"], "search.json: the search picked SW, a baseline (no GenPAS setting it trained "
                                         "beat it on validation), so it has no GenPAS setting to train")
    code, _ = cli(["experiment", "strategies", "--plan", "--data", str(tiny / "log.csv"), "--out", str(tiny / "e"),
                   "--strategies", "lt,mt", "--search", str(tiny / "search.json")])
    assert code == 0  # no GenPAS trained: nothing to refuse
    (tiny / "e").mkdir()  # a report still shows the search, and says what it picked
    assert cli(["experiment", "report", "--out", str(tiny / "e"), "--search", str(tiny / "search.json"),
                "--to", str(tiny / "r.md")])[0] == 0
    assert "It picked SW, a baseline: no GenPAS setting it trained beat it on validation." in (
        tiny / "r.md").read_text()


def test_the_report_says_whether_its_experiments_train_the_search_s_pick():
    from genpas.search.search_section import pick_sentence

    search = {"best": {"strategy": "genpas", "alpha": 0.0, "beta": 1.0, "gamma": 1.0}}
    assert pick_sentence(search, {(0.0, 1.0, 1.0)}) == "The experiments below use its pick under their own protocol."
    assert pick_sentence(search, {(0.5, 0.0, 0.0)}) == "The experiments below train GenPAS(0.5, 0, 0), not its pick."
    assert pick_sentence(search, {(0.5, 0.0, 0.0), (0.0, 1.0, 1.0)}).startswith(
        "The experiments below that train GenPAS(0, 1, 1) use its pick")
    baseline = {"best": {"strategy": "mt", "alpha": 1.0, "beta": 0.0, "gamma": float("-inf")}}
    assert pick_sentence(baseline, {(0.5, 0.0, 0.0)}).endswith("; the experiments below train GenPAS(0.5, 0, 0).")


def test_a_report_refuses_a_run_given_twice(tiny, cli):
    from pathlib import Path

    run = tiny / "r"
    assert cli(["train", "--data", str(tiny / "log.csv"), "--config", str(tiny / "tiny.yaml"), "--out", str(run)])[0] == 0
    search = Path(__file__).parents[1] / "docs" / "results" / "search-ml-100k-seed0.json"
    (tiny / "e").mkdir()
    refused(cli, ["experiment", "report", "--out", tiny / "e", "--search", search, "--to", tiny / "r.md",
                  "--run", run, "--run", f"{tiny}/./r/"], f"--run {run} is given twice; give each run once")
    assert not (tiny / "r.md").exists()


def test_a_report_without_plots_leaves_no_plots_directory(tmp_path, cli):
    from pathlib import Path

    search = Path(__file__).parents[1] / "docs" / "results" / "search-ml-100k-seed0.json"
    (tmp_path / "e").mkdir()
    assert cli(["experiment", "report", "--out", str(tmp_path / "e"), "--search", str(search),
                "--to", str(tmp_path / "r.md")])[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e", "r.md"]


def test_a_write_the_file_system_refuses_names_the_output_not_its_temporary_file(tiny, cli, monkeypatch):
    import os

    from genpas.atomic import atomic_path

    out = tiny / "rec.csv"
    with pytest.raises(OSError) as exc, atomic_path(out) as tmp:
        raise FileNotFoundError(f"No such file or directory (os error 2): {tmp}")  # how polars says it
    assert exc.value.filename == str(out) and ".tmp-" not in str(exc.value)
    with pytest.raises(OSError) as exc, atomic_path(out):
        open(tiny / "an-input-gone")  # not about the output: its own name stays
    assert exc.value.filename == str(tiny / "an-input-gone")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device", str(src), None, str(dst))

    monkeypatch.setattr(os, "replace", full_disk)
    refused(cli, ["analyze", "--data", tiny / "log.csv", "--out", tiny / "a.json"],
            f"{tiny / 'a.json'}: cannot be written (No space left on device)")
    assert sorted(p.name for p in tiny.iterdir()) == ["log.csv", "tiny.yaml"]
