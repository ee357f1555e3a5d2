"""Bad input: one line naming the file and the row or field, exit code 2, never a traceback."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest

from genpas.cli import main
from genpas.errors import GenpasError


def run_cli(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return exc.value.code, captured.err


def bad_files(tmp_path):
    """name -> (path, extra CLI args, text the message must contain)."""
    p = tmp_path
    (p / "empty.csv").write_text("")
    (p / "header.csv").write_text("user_id,item_id,timestamp\n")
    (p / "nocol.csv").write_text("user_id,item,timestamp\nu,i,1\n")
    (p / "badtime.csv").write_text("user_id,item_id,timestamp\nu,i,1\nu,j,yesterday-ish\n")
    (p / "emptyuser.csv").write_text("user_id,item_id,timestamp\nu,i,1\n,j,2\n")
    (p / "emptyitem.tsv").write_text("user_id\titem_id\ttimestamp\nu\ti\t1\nu\t\t2\n")
    (p / "corrupt.json.gz").write_bytes(gzip.compress(b'{"reviewerID": "a"}\n' * 50)[:-20])
    (p / "broken.jsonl").write_text('{"user_id": "a", "parent_asin": "x", "timestamp": 1}\n{"user_id": "b", \n')
    (p / "ratings.dat").write_text("1\t2\t3\t4\n")
    (p / "u.data").write_text("1::2::3::4\n")
    (p / "few.csv").write_text("user_id,item_id,timestamp\nu,i,1\nv,j,2\n")
    (p / "wordtime.csv").write_text("user_id,item_id,timestamp\nu,i,abc\nu,j,def\n")  # no date format fits
    (p / "notime.csv").write_text("user_id,item_id,timestamp\nu,i,1\nu,j\n")  # the row lacks its last field
    (p / "mystery.bin").write_bytes(b"\x00\x01\x02")
    import polars as pl

    pl.DataFrame({"user_id": ["u"], "item_id": ["i"], "timestamp": [1]}).write_parquet(p / "table.parquet")
    (p / "utf16.csv").write_bytes("user_id,item_id,timestamp\nu,i,1\n".encode("utf-16"))
    return {
        "missing file": (p / "nope.csv", [], "no such file"),
        "unknown format": (p / "few.csv", ["--format", "xlsx"], "unknown format"),
        "undetectable format": (p / "mystery.bin", [], "--format"),
        "empty file": (p / "empty.csv", [], "empty"),
        "header only": (p / "header.csv", [], "no data rows"),
        "missing column": (p / "nocol.csv", [], "missing column 'item_id'"),
        "unparseable timestamp": (p / "badtime.csv", [], "line 3: unparseable timestamp"),
        "timestamps that are words": (p / "wordtime.csv", [], "line 2: unparseable timestamp 'abc'"),
        "a row without its timestamp": (p / "notime.csv", [], "line 3: no timestamp (a missing or empty field)"),
        "empty user id": (p / "emptyuser.csv", [], "line 3: empty user id"),
        "empty item id": (p / "emptyitem.tsv", [], "line 3: empty item id"),
        "corrupt gzip": (p / "corrupt.json.gz", [], "corrupt gzip"),
        "broken json line": (p / "broken.jsonl", [], "line 2: broken JSON"),
        "movielens dat with tabs": (p / "ratings.dat", [], "expected '::' separators"),
        "u.data with colons": (p / "u.data", [], "expected tab separators"),
        "nothing after k-core": (p / "few.csv", ["--min-user-count", "2"], "nothing left after the k-core"),
        "parquet read as csv": (p / "table.parquet", ["--format", "csv"], "binary data (NUL bytes), not UTF-8 text"),
        "utf-16 text": (p / "utf16.csv", [], "binary data (NUL bytes), not UTF-8 text; check the file"),
    }


CASES = sorted([
    "missing file", "unknown format", "undetectable format", "empty file", "header only", "missing column",
    "unparseable timestamp", "timestamps that are words", "a row without its timestamp", "empty user id", "empty item id", "corrupt gzip", "broken json line",
    "movielens dat with tabs", "u.data with colons", "nothing after k-core", "parquet read as csv", "utf-16 text",
])


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gives_one_clean_line(tmp_path, capsys, case):
    path, extra, needle = bad_files(tmp_path)[case]
    code, err = run_cli(capsys, "data", "--data", str(path), *extra)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert needle in lines[0]
    if case not in ("unknown format",):
        assert path.name in lines[0]
    assert "Traceback" not in err


def test_binary_or_utf16_text_is_named_as_such_by_prepare_too(tmp_path, capsys):
    (tmp_path / "utf16.csv").write_bytes("user_id,item_id,timestamp\nu,i,1\nu,j,2\n".encode("utf-16"))
    code, err = run_cli(capsys, "prepare", "--data", str(tmp_path / "utf16.csv"), "--out", str(tmp_path / "store"))
    assert code == 2 and err.strip() == f"error: {tmp_path / 'utf16.csv'}: binary data (NUL bytes), not UTF-8 text; " \
                                        "check the file and its --format", err
    assert not (tmp_path / "store").exists()


def test_no_traceback_from_the_real_console_script(tmp_path):
    (tmp_path / "x.csv").write_text("user_id,item_id,timestamp\n")
    result = subprocess.run([sys.executable, "-m", "genpas", "data", "--data", str(tmp_path / "x.csv")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'x.csv'}: no data rows (only a header?)"


def test_unknown_option_is_a_usage_error(capsys):
    code, err = run_cli(capsys, "data", "--no-such-flag")
    assert code == 2
    assert "no-such-flag" in err


@pytest.mark.parametrize("yaml_text,message", [
    ('exclude_history: "false"', "c.yaml: exclude_history: must be true or false, got 'false'"),  # a string is truthy
    ("cosine: 3", "c.yaml: cosine: must be true or false, got 3"),
    ("strategy: genpas\nalpha: true\nbeta: 0\ngamma: 0", "c.yaml: alpha: must be a number or +-inf, got True"),
    ("strategy: genpas\nalpha: [1]\nbeta: 0\ngamma: 0", "c.yaml: alpha: must be a number or +-inf, got [1]"),
    ("ks: [5, 1000]", "c.yaml: ks: must be integers >= 1 including 5 and 10, got [5, 1000]"),
    ("ks: []", "c.yaml: ks: must be integers >= 1 including 5 and 10, got []"),
    ("ks: [10]", "c.yaml: ks: must be integers >= 1 including 5 and 10, got [10]"),  # tables show K = 5 and 10
    ("ks: [a]", "c.yaml: ks: must be a list of integers, got ['a']"),
    ("ks: [10.7, 5]", "c.yaml: ks: must be a list of integers, got [10.7, 5]"),  # not cut to 10
    ("ks: 10", "c.yaml: ks: must be a list of integers, got 10"),
    ("user_col: [a]", "c.yaml: user_col: must be a string, got ['a']"),
    ("strategy: [mt]", "c.yaml: strategy: must be a string, got ['mt']"),
    ("model: {a: 1}", "c.yaml: model: must be a string, got {'a': 1}"),
    ("item_text: 5", "c.yaml: item_text: must be a string, got 5"),
    ('transforms: "crop:0.5"', "c.yaml: transforms: must be a list of NAME:RATIO strings, e.g. [crop:0.6], got 'crop"),
    ("transforms: 5", "c.yaml: transforms: must be a list of NAME:RATIO strings, e.g. [crop:0.6], got 5"),
    ("mode: pairs\ntransforms: [foo]", "c.yaml: transforms: cannot read transform 'foo'; write NAME:RATIO"),
    ("heads: 3", "c.yaml: heads: must divide dim (64, the default), got 3"),  # no --dim was given
    ("dim: 9", "c.yaml: dim: must be a multiple of heads (2, the default), got 9"),  # nor --heads
    ("negative_sampling: popularity", "c.yaml: negative_sampling: popularity needs negatives N > 0 (the full softmax "
                                      "samples nothing), got negatives (0, the default)"),
    ("classic: true", "c.yaml: classic: needs mode pairs and strategy lt, mt or sw, got mode (packed, the default) "
                      "and strategy (mt, the default)"),
    ("mode: pairs\nclassic: true\nnum_pairs: 5", "c.yaml: classic: draws every pair once an epoch; drop num_pairs (5)"),
    ("lr: 0.1\nlr: 0.2", "c.yaml: line 2: invalid YAML (duplicate key 'lr')"),
    ("num_pairs: 10000000000000000000000", "c.yaml: num_pairs: must be <= 1000000000000"),
    ("lr: -1", "c.yaml: lr: must be > 0, got -1"),
    ("lr: -1e-3", "c.yaml: lr: must be > 0, got -0.001"),  # YAML 1.2's floats: no dot needed
    ("seed: 18446744073709551616", "c.yaml: seed: must be <= 18446744073709551615, got 18446744073709551616"),
    ("max_len: 2.5", "c.yaml: max_len: must be an integer, got 2.5"),
    ("model: gru", "c.yaml: model: must be one of sasrec, hstu, tiger, pop, got 'gru'"),
    ("device: cuda:9" if not __import__("torch").cuda.is_available() else "device: cuda:999", "--device cuda"),
])
def test_config_values_of_the_wrong_kind_are_refused(tmp_path, capsys, yaml_text, message):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{k},{k}\n" for k in range(5)))
    (tmp_path / "c.yaml").write_text(yaml_text + "\nepochs: 1\n")
    code, err = run_cli(capsys, "train", "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv"),
                        "--out", str(tmp_path / "run"))
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


def test_a_bad_transform_in_a_config_is_refused_by_a_plan_before_any_training(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{k},{k}\n" for k in range(5)))
    (tmp_path / "c.yaml").write_text("mode: pairs\ntransforms: [crop:2]\n")
    for command in (["search", "--plan"], ["experiment", "strategies", "--plan"]):
        code, err = run_cli(capsys, *command, "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv"),
                            "--out", str(tmp_path / "out"))
        assert code == 2 and err.strip() == f"error: {tmp_path / 'c.yaml'}: transforms: transform crop: ratio 2.0 is " \
                                            "outside [0, 1]", err
    assert not (tmp_path / "out").exists()


def test_an_unknown_format_in_a_config_is_named_by_its_file_and_refused_by_a_plan(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{k},{k}\n" for k in range(5)))
    (tmp_path / "c.yaml").write_text("format: xlsx\n")
    known = "must be one of csv, tsv, parquet, movielens, amazon, recbole, got 'xlsx'"
    for command in (["train"], ["search", "--plan"], ["experiment", "strategies", "--plan"]):
        code, err = run_cli(capsys, *command, "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv"),
                            "--out", str(tmp_path / "out"))
        assert code == 2 and err.strip() == f"error: {tmp_path / 'c.yaml'}: format: {known}", err
    code, err = run_cli(capsys, "train", "--format", "xlsx", "--data", str(tmp_path / "log.csv"),
                        "--out", str(tmp_path / "out"))
    assert code == 2 and err.strip() == f"error: --format {known}", err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("yaml_text,message", [
    ("data: 5", "c.yaml: data: must be a string, got 5"),
    ("model: [a]", "c.yaml: model: must be a string, got ['a']"),
    ("model: pop", "c.yaml: model: "),  # popularity is a strategy of these commands, not a model to train
])
def test_the_data_and_model_of_a_config_are_named_by_the_file_not_by_a_flag_not_given(tmp_path, capsys, yaml_text,
                                                                                       message):
    (tmp_path / "c.yaml").write_text(yaml_text + "\n")
    commands = [["search", "--plan"], ["experiment", "strategies", "--plan"]]
    commands += [["run", "--strategies", "pop"]] if yaml_text.startswith("data") else []
    for command in commands:
        code, err = run_cli(capsys, *command, "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out"))
        assert code == 2 and len(err.strip().splitlines()) == 1 and f"error: {tmp_path / message}" in err, err
    assert not (tmp_path / "out").exists()


def test_a_bad_config_value_is_named_by_its_file_and_a_bad_flag_by_the_flag(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{k},{k}\n" for k in range(5)))
    (tmp_path / "c.yaml").write_text("lr: -1\nepochs: 1\n")
    common = ["--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv")]
    code, err = run_cli(capsys, "train", *common, "--lr", "0", "--out", str(tmp_path / "run"))
    assert code == 2 and err.strip() == "error: --lr must be > 0, got 0.0"  # the flag overrides the file's value
    for command in (["search", "--plan"], ["experiment", "strategies", "--strategies", "mt"]):
        code, err = run_cli(capsys, *command, *common, "--out", str(tmp_path / "out"))
        assert code == 2 and err.strip() == f"error: {tmp_path / 'c.yaml'}: lr: must be > 0, got -1", err
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_options_that_clash_are_each_named_by_where_their_value_came_from(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{k},{k}\n" for k in range(5)))
    (tmp_path / "c.yaml").write_text("heads: 2\n")
    common = ["--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "run")]
    for args, message in ((["--dim", "9"], "--dim must be a multiple of heads (2, the default), got 9"),
                          (["--dim", "9", "--heads", "2"], "--heads must divide --dim (9), got 2"),
                          (["--config", str(tmp_path / "c.yaml"), "--dim", "9"],
                           f"{tmp_path / 'c.yaml'}: heads: must divide --dim (9), got 2")):
        code, err = run_cli(capsys, "train", *args, *common)
        assert code == 2 and err.strip() == f"error: {message}", err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("yaml_text,flags,message", [
    ("strategy: genpas", [], "c.yaml: strategy: genpas needs alpha, beta and gamma; none is set"),
    ("strategy: genpas\nalpha: 1", [], "c.yaml: strategy: genpas needs alpha, beta and gamma; beta and gamma are not "
                                       "set"),
    ("", ["--strategy", "genpas", "--alpha", "1"], "--strategy genpas needs --alpha, --beta and --gamma; --beta and "
                                                   "--gamma are not set"),
    ("strategy: mt\nalpha: 1", [], "c.yaml: strategy: mt is a preset: drop alpha (1), or choose strategy genpas"),
    ("", ["--strategy", "mt", "--alpha", "1"], "--strategy mt is a preset: drop --alpha (1.0), or choose --strategy "
                                               "genpas"),
    ("alpha: 1", ["--strategy", "mt"], "--strategy mt is a preset: drop alpha (1, in c.yaml), or choose --strategy "
                                       "genpas"),
    ("strategy: mt", ["--alpha", "1"], "c.yaml: strategy: mt is a preset: drop --alpha (1.0), or choose strategy "
                                       "genpas"),
    ("beta: 1", [], "c.yaml: beta: applies to strategy genpas only, got strategy (mt, the default), a preset"),
    ("", ["--beta", "1"], "--beta applies to --strategy genpas only, got strategy (mt, the default), a preset"),
    ("strategy: foo", [], "c.yaml: strategy: must be one of lt, mt, sw, genpas, got 'foo'"),
    ("", ["--strategy", "foo"], "--strategy must be one of lt, mt, sw, genpas, got 'foo'"),
    ("strategy: genpas\nalpha: inf\nbeta: 0\ngamma: 0", [],
     "c.yaml: alpha: inf is not allowed (it has no limit in the GenPAS family)"),
])
def test_a_strategy_and_its_biases_are_named_by_where_they_came_from_before_training(tmp_path, capsys, caplog,
                                                                                     yaml_text, flags, message):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{k},{k}\n" for k in range(5)))
    (tmp_path / "c.yaml").write_text(yaml_text + "\nepochs: 1\n")
    common = ["--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv"), *flags]
    expected = "error: " + message.replace("c.yaml", str(tmp_path / "c.yaml"))
    code, err = run_cli(capsys, "train", *common, "--out", str(tmp_path / "run"))
    assert code == 2 and err.strip() == expected, err
    if not flags:  # the jobs set every run's strategy: the file's is not used, and a warning says so
        for command in (["search", "--plan"], ["experiment", "strategies", "--plan"]):
            caplog.clear()
            with caplog.at_level("WARNING"):
                code, err = run_cli(capsys, *command, *common, "--out", str(tmp_path / "out"))
            assert "not used: this command sets the strategy of every run it trains" in caplog.text, caplog.text
            assert expected not in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_the_jobs_turn_a_base_config_into_each_strategy_whatever_its_own():
    from dataclasses import replace

    from genpas.search.compare import LINEUP
    from genpas.search.experiments import ExperimentSettings
    from genpas.train.config import TrainConfig

    for base in (TrainConfig(strategy="mt"), TrainConfig(strategy="genpas", alpha=1, beta=0, gamma="-inf")):
        settings = ExperimentSettings(base, genpas=(0.5, 1.0, 0.0))
        configs = {name: settings.config(name, 0) for name in ("pop", "lt", "mt", "sw", "genpas")}
        assert {n: (c.strategy, c.alpha, c.beta, c.gamma) for n, c in configs.items()} == {
            "pop": ("mt", None, None, None), "lt": ("lt", None, None, None), "mt": ("mt", None, None, None),
            "sw": ("sw", None, None, None), "genpas": ("genpas", 0.5, 1.0, 0.0)}
        assert [replace(base, **o).strategy for o in LINEUP.values()] == ["mt", "lt", "mt", "sw", "genpas"]


def test_infinite_timestamps_and_a_search_into_its_input(tmp_path, capsys):
    (tmp_path / "inf.csv").write_text("user_id,item_id,timestamp\nu,i,inf\nu,j,5\n")
    code, err = run_cli(capsys, "data", "--data", str(tmp_path / "inf.csv"))
    assert code == 2 and "line 2: unparseable timestamp 'inf'" in err
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu,i,1\nu,j,2\n")
    code, err = run_cli(capsys, "search", "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "log.csv"))
    assert code == 2 and "is an input of this command" in err and "Traceback" not in err


@pytest.mark.parametrize("args,message", [
    (["data", "--min-user-count", "-1"], "--min-user-count must be >= 0, got -1"),
    (["data", "--user-col", "item_id"], "must name three different columns, got 'item_id', 'item_id', 'timestamp'"),
    (["synth", "--zipf", "nan"], "--zipf must be a finite number, got nan"),
    (["synth", "--mean-length", "inf"], "--mean-length must be a finite number, got inf"),
])
def test_negative_k_cores_and_non_finite_synth_options(tmp_path, capsys, args, message):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\nu,i,1\nu,j,2\n")
    extra = ["--data", str(tmp_path / "log.csv")] if args[0] == "data" else ["--out", str(tmp_path / "z.csv")]
    code, err = run_cli(capsys, *args, *extra)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "z.csv").exists()


@pytest.mark.parametrize("args,message", [
    (["train", "--levels", "2"], "--levels applies to --model tiger only; this run's model is sasrec"),
    (["train", "--model", "hstu", "--item-embeddings", "text"], "--item-embeddings applies to --model tiger only"),
    (["train", "--time-buckets", "8"], "--time-buckets applies to --model hstu only; this run's model is sasrec"),
    (["train", "--model", "tiger", "--negatives", "8"], "--negatives applies to --model sasrec or hstu only"),
    (["train", "--model", "pop", "--negative-sampling", "popularity"], "--negative-sampling applies to --model"),
    (["experiment", "strategies", "--seeds", "0,1,0"], "--seeds: 0 is given twice in '0,1,0'"),
    (["experiment", "strategies", "--genpas", "0,0,0", "--search", "s.json"], "give --genpas or --search, not both"),
    (["experiment", "strategies", "--strategies", "mt,lt,mt"], "--strategies: 'mt' is given twice in 'mt,lt,mt'"),
    (["run", "--strategies", "mt,mt"], "--strategies: 'mt' is given twice in 'mt,mt'"),
    (["train", "--model", "pop", "--strategy", "lt"], "--strategy applies to --model sasrec or hstu or tiger only"),
    (["train", "--model", "pop", "--epochs", "3"], "--epochs applies to --model sasrec or hstu or tiger only"),
])
def test_flags_that_would_be_ignored_or_counted_twice_are_refused(tmp_path, capsys, args, message):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{k},{k}\n" for k in range(5)))
    code, err = run_cli(capsys, *args, "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "run"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args,message", [
    (["experiment", "data-efficiency", "--fractions", "0.1,,0.2"], "--fractions: empty item at position 2 of '0.1,,0.2'"),
    (["experiment", "strategies", "--seeds", "0,,1"], "--seeds: empty item at position 2 of '0,,1'"),
    (["experiment", "model-size", "--dims", "8,16,"], "--dims: empty item at position 3 of '8,16,'"),
    (["experiment", "strategies", "--strategies", "mt,,sw"], "--strategies: empty item at position 2 of 'mt,,sw'"),
    (["run", "--strategies", "mt,"], "--strategies: empty item at position 2 of 'mt,'"),
])
def test_an_empty_item_of_a_list_option_is_refused_not_dropped(tmp_path, capsys, args, message):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u,i{k},{k}\n" for k in range(5)))
    code, err = run_cli(capsys, *args, "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "run"))
    assert code == 2 and err.strip() == f"error: {message}", err
    assert not (tmp_path / "run").exists()


def test_only_flags_are_checked_against_the_model_not_a_config_files_keys(tmp_path, capsys):
    from genpas.train.config import TrainConfig

    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u{u},i{k},{k}\n" for u in range(4)
                                                                          for k in range(6)))
    # a run's config.yaml holds every key, TIGER's and HSTU's included; training from it must not trip the check
    (tmp_path / "c.yaml").write_text(TrainConfig(levels=2, time_buckets=8, epochs=1, dim=8, heads=1,
                                                 progress=False).to_yaml())
    code, err = run_cli(capsys, "train", "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv"),
                        "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert (tmp_path / "run" / "metrics.json").exists()


def test_an_experiment_flag_overrides_a_bad_value_of_its_config(tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u{u},i{k},{k}\n" for u in range(4)
                                                                          for k in range(6)))
    (tmp_path / "c.yaml").write_text("epochs: 0\n")
    common = ["--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "o")]
    code, err = run_cli(capsys, "experiment", "strategies", "--strategies", "mt", "--seeds", "0", *common, "--plan")
    assert code == 2 and f"{tmp_path / 'c.yaml'}: epochs: must be >= 1, got 0" in err, err
    code, err = run_cli(capsys, "experiment", "strategies", "--strategies", "mt", "--seeds", "0", *common, "--plan",
                        "--epochs", "2")
    assert code == 0, err  # the flag replaces the file's value before it is checked


def test_a_duplicated_item_column_in_item_text_is_refused(tmp_path):
    import numpy as np

    from genpas.data.item_text import read_item_text

    (tmp_path / "items.item").write_text("item_id:token\ttitle:token\titem_id:token\na\tA film\tb\n")
    (tmp_path / "items.csv").write_text("item_id,title,item_id\na,A film,b\n")
    for name in ("items.item", "items.csv"):
        with pytest.raises(GenpasError, match=f"{name}: the header names column 'item_id' twice"):
            read_item_text(tmp_path / name, np.array(["a", "b"]))


def test_the_screening_study_api_bounds_its_sample_like_the_cli():
    from genpas.search.screening import default_grid
    from genpas.search.screening_study import run_screening_study

    for size in (2, len(default_grid()) + 1):
        with pytest.raises(GenpasError, match=rf"--settings must lie in \[3, {len(default_grid())}\]"):
            run_screening_study(None, None, size)


def test_the_main_job_keeps_its_configs_seed_and_a_flag_overrides_a_bad_config_value(tmp_path, capsys):
    import json

    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u{u},i{k},{k}\n" for u in range(4)
                                                                          for k in range(6)))
    (tmp_path / "c.yaml").write_text("seed: 7\nepochs: 0\n")
    common = ["run", "--config", str(tmp_path / "c.yaml"), "--data", str(tmp_path / "log.csv"), "--strategies", "pop",
              "--out", str(tmp_path / "o"), "--no-progress"]
    code, err = run_cli(capsys, *common)
    assert code == 2 and err.strip() == f"error: {tmp_path / 'c.yaml'}: epochs: must be >= 1, got 0"
    code, err = run_cli(capsys, *common, "--epochs", "1")
    assert code == 0, err
    config = json.loads((tmp_path / "o" / "results.json").read_text())["config"]
    assert (config["seed"], config["epochs"]) == (7, 1)  # the config's seed was replaced by 0 before


def test_pairs_writes_a_draw_block_by_block_so_a_huge_num_pairs_cannot_exhaust_memory(tmp_path, capsys, monkeypatch):
    import json

    import numpy as np

    from genpas.augment import EpochSampler, PairDistribution, make_strategy
    from genpas.data import load_dataset
    from genpas.data.split import training_part

    (tmp_path / "log.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"u{u},i{k},{k}\n" for u in range(4)
                                                                          for k in range(6)))
    store = training_part(load_dataset(tmp_path / "log.csv"), "loo")  # what `genpas pairs` draws from
    u, k, j = EpochSampler(PairDistribution(store.lengths, make_strategy("mt")), seed=3, size=20000).epoch(0)

    def whole_epoch(*args, **kwargs):
        raise AssertionError("the pairs command must not hold the whole epoch in memory")

    monkeypatch.setattr(EpochSampler, "epoch", whole_epoch)
    code, err = run_cli(capsys, "pairs", "--data", str(tmp_path / "log.csv"), "--num-pairs", "20000", "--seed", "3",
                        "--out", str(tmp_path / "p.jsonl"))
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 20000  # more than one block of draws, written as they are drawn, in the same order
    assert [(r["k"], r["j"]) for r in rows] == list(zip(k.tolist(), j.tolist()))
    assert [r["user"] for r in rows] == [str(x) for x in np.asarray(store.user_ids)[u]]
