"""A damaged result file under `genpas experiment report` is one error line naming it (exit 2), and nothing is
written: no report, no figures."""

from __future__ import annotations

import json

import pytest

from genpas.cli import main

VALID = {"experiment": "strategies", "data": "x", "config": {}, "seeds": [0], "strategies": {}}

CASES = {
    "truncated JSON": ('{"experiment": "strat', "not valid JSON"),
    "not an object": ("[1, 2]", "expected a JSON object, found list"),
    "missing field": (json.dumps({k: v for k, v in VALID.items() if k != "data"}),
                      "field 'data' should be a str, is missing"),
    "field of the wrong type": (json.dumps({**VALID, "strategies": [1]}), "field 'strategies' should be a dict, is a list"),
    "another experiment": (json.dumps({**VALID, "experiment": "long-tail"}),
                           "holds a 'long-tail' experiment, its name says 'strategies'"),
    "malformed row": (json.dumps({**VALID, "config": {"model": "sasrec"}, "strategies": {"mt": {"label": "MT"}}}),
                      "a field is missing or malformed"),
    "not UTF-8": (b"\xff\xfe\x00garbage", "unreadable"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_result_file_is_one_line_and_writes_nothing(tmp_path, capsys, case):
    content, needle = CASES[case]
    results = tmp_path / "results"
    results.mkdir()
    path = results / "strategies.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "report", "--out", str(results), "--to", str(tmp_path / "report.md")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: ") and needle in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no report, no figures directory
    assert [p.name for p in results.iterdir()] == ["strategies.json"]


def test_every_experiment_of_the_report_has_its_fields_checked():
    from genpas.search.experiment_report import TITLES
    from genpas.search.experiments import EXPERIMENTS
    from genpas.search.result_files import FIELDS

    assert set(FIELDS) == set(TITLES) == set(EXPERIMENTS)


@pytest.mark.parametrize("content,needle", [
    ('{"data": ', "not valid JSON"),
    ('{"pick": 3}', "not a search.json (field 'data' missing or malformed)"),
    ('{"data": "x", "seed": 0, "config": {}, "screened": [], "trained": [], "screen_seconds": 1.0, "best": {}}',
     "not a search.json (best.alpha: should be a number, inf or -inf, is missing)"),
    ('{"data": "x", "seed": 0, "config": {}, "screened": [], "trained": [], "screen_seconds": 1.0, '
     '"best": {"alpha": 0, "beta": 1, "gamma": 1}}', "a field is missing or malformed"),
])
def test_a_damaged_search_json_is_one_line_and_writes_nothing(tmp_path, capsys, content, needle):
    results = tmp_path / "results"
    results.mkdir()
    search = tmp_path / "search.json"
    search.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "report", "--out", str(results), "--to", str(tmp_path / "report.md"),
              "--search", str(search)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {search}: ") and needle in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "search.json"]


def test_report_output_rules(tmp_path, capsys):
    """--to never replaces an input or a file that is not an earlier report (without --overwrite), and regenerating
    a report replaces it."""
    import shutil
    from pathlib import Path

    source = Path(__file__).parents[1] / "docs" / "results" / "experiments-ml-100k" / "strategies.json"
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(source, results / "strategies.json")
    (tmp_path / "notes.md").write_text("keep me\n")
    (tmp_path / "dir").mkdir()

    def report(*extra):
        with pytest.raises(SystemExit) as exc:
            main(["experiment", "report", "--out", str(results), *extra])
        return exc.value.code, capsys.readouterr()

    for to, needle in ((results / "strategies.json", "is an input"), (tmp_path / "notes.md", "pass --overwrite"),
                       (tmp_path / "dir", "is a directory")):
        code, out = report("--to", str(to))
        assert code == 2 and needle in out.err and "Traceback" not in out.err
    assert (tmp_path / "notes.md").read_text() == "keep me\n"
    assert json.loads((results / "strategies.json").read_text())["experiment"] == "strategies"
    assert report("--to", str(tmp_path / "r.md"))[0] == 0
    assert report("--to", str(tmp_path / "r.md"))[0] == 0  # an earlier report: replaced without asking
    assert report("--to", str(tmp_path / "notes.md"), "--overwrite")[0] == 0
    assert (tmp_path / "notes.md").read_text().startswith("# Results on ml-100k")


def test_a_damaged_run_given_to_the_report_is_one_line(tmp_path, capsys):
    import shutil
    from pathlib import Path

    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(Path(__file__).parents[1] / "docs/results/experiments-ml-100k/strategies.json", results)
    for content, needle in (("{bad", "not valid JSON"), ('{"config": {"seed": 0}, "valid": null}', "malformed")):
        run = tmp_path / "run"
        run.mkdir(exist_ok=True)
        (run / "metrics.json").write_text(content)
        with pytest.raises(SystemExit) as exc:
            main(["experiment", "report", "--out", str(results), "--to", str(tmp_path / "r.md"), "--run", str(run)])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith(f"error: {run / 'metrics.json'}: ") and needle in err, err
        assert not (tmp_path / "r.md").exists() and not (tmp_path / "results" / "r").exists()


@pytest.mark.parametrize("name,damage,needle", [
    ("strategies.json", lambda r: r["strategies"]["genpas"]["test"]["ndcg@10"].update(values=[0.1]),
     "'strategies.genpas.test.ndcg@10' should hold one finite number per seed ({seeds}), holds [0.1]"),
    ("strategies.json", lambda r: r.update(seeds=[0, 1, 2, 3]), "should hold one finite number per seed (4)"),
    ("strategies.json", lambda r: r["strategies"]["mt"]["valid"]["ndcg@10"].update(values=[0.1, float("nan")]),
     "'strategies.mt.valid.ndcg@10' should hold one finite number per seed ({seeds}), holds [0.1, NaN]"),
    ("strategies.json", lambda r: r.update(seeds=[]), "field 'seeds' is empty"),
    ("strategies.json", lambda r: r.update(strategies={}), "field 'strategies' is empty: no result to report"),
    ("long-tail.json", lambda r: r.update(strategies={}), "field 'strategies' is empty: no result to report"),
    ("long-tail.json", lambda r: r["strategies"]["mt"]["groups"]["tail"]["ndcg@10"].update(values=[0.1]),
     "'strategies.mt.groups.tail.ndcg@10' should hold one finite number per seed ({seeds})"),
])
def test_a_result_whose_figures_do_not_pair_by_seed_is_one_line_and_writes_nothing(tmp_path, capsys, name, damage,
                                                                                  needle):
    """Paired differences pair the strategies' per-seed values by position: a list cut short, stretched or holding a
    NaN would give a wrong difference without a word, so the report refuses the file instead."""
    from pathlib import Path

    result = json.loads((Path(__file__).parents[1] / "docs" / "results" / "ml-1m" / name).read_text())
    needle = needle.replace("{seeds}", str(len(result["seeds"])))  # as many as the committed file has
    damage(result)
    results = tmp_path / "results"
    results.mkdir()
    (results / name).write_text(json.dumps(result))
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "report", "--out", str(results), "--to", str(tmp_path / "report.md")])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1 and needle in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_search_of_other_data_is_refused_beside_the_experiments(tmp_path, capsys):
    import shutil
    from pathlib import Path

    docs = Path(__file__).parents[1] / "docs" / "results"
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(docs / "experiments-ml-100k" / "strategies.json", results / "strategies.json")
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "report", "--out", str(results), "--to", str(tmp_path / "report.md"),
              "--search", str(docs / "ml-1m" / "search.json")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1
    assert "a search of ml-1m, while the experiments in" in lines[0] and "are of ml-100k" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_report_from_a_file_names_the_flag_given(tmp_path, capsys):
    (tmp_path / "keep").write_text("mine\n")
    with pytest.raises(SystemExit) as exc:
        main(["experiment", "report", "--out", str(tmp_path / "keep")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and lines == [f"error: --out {tmp_path / 'keep'} is a file; give the experiment "
                                             "directory (`genpas experiment ... --out`)"]
    assert (tmp_path / "keep").read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
