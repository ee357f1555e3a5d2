"""One vocabulary of flags across commands, help without type tags, usage errors in one line."""

from __future__ import annotations

import re

import pytest

from genpas.cli import main
from genpas.cli.app import command


def commands(cmd=None, path=("genpas",)):
    cmd = cmd or command()
    subs = getattr(cmd, "commands", {})
    if not subs:
        yield " ".join(path), cmd
    for name, sub in subs.items():
        yield from commands(sub, (*path, name))


def flags(cmd) -> set[str]:
    return {name for p in cmd.params for name in (*p.opts, *p.secondary_opts)}


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


DATA_FLAGS = {"--data", "--format", "--user-col", "--item-col", "--time-col", "--min-user-count", "--min-item-count"}


def test_every_command_that_reads_data_takes_every_data_flag():
    readers = [name for name, cmd in commands() if "--data" in flags(cmd)]
    assert {"genpas data", "genpas pairs", "genpas analyze", "genpas train", "genpas run", "genpas search",
            "genpas experiment strategies", "genpas experiment screening"} <= set(readers)
    for name, cmd in commands():
        if name in readers:
            assert DATA_FLAGS <= flags(cmd), f"{name} lacks {sorted(DATA_FLAGS - flags(cmd))}"


def test_one_spelling_per_concept_with_old_spellings_kept():
    table = dict(commands())
    for name in ("genpas train", "genpas run", "genpas search"):
        assert "--time-budget" in flags(table[name]), name
    assert "--budget-minutes" in flags(table["genpas search"])  # the old spelling, hidden
    for name in ("genpas run", "genpas experiment strategies"):
        assert {"--strategies", "--strategy"} <= flags(table[name]), name


@pytest.mark.parametrize("name", [name for name, _ in commands()])
def test_help_has_no_type_tags_and_shows_defaults(capsys, name):
    code, out, _ = run(capsys, *name.split()[1:], "--help")
    assert code == 0
    assert not re.search(r"<(int|str|bool|float|path|list\[\w+\])>", out), out
    if name == "genpas train":
        assert "[default: 64]" in out.replace("\n", " ") or "default: 64" in out


@pytest.mark.parametrize("args, text", [
    (["train", "--seed", "abc", "--out", "x"], "Invalid value for '--seed'"),
    (["train"], "Missing option '--out'"),
    (["trian"], "No such command 'trian'"),
    (["data", "--no-such-flag"], "No such option"),
    (["search", "--out", "x", "--top-k", "1.5"], "Invalid value for '--top-k'"),
])
def test_usage_errors_are_one_line_with_exit_2(capsys, tmp_path, args, text):
    code, _, err = run(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and text in lines[0], err
    assert "--help" in lines[0] and "Traceback" not in err


def test_search_refuses_both_spellings_of_the_budget(capsys, tmp_path):
    code, _, err = run(capsys, "search", "--out", tmp_path / "s", "--time-budget", "1", "--budget-minutes", "1")
    assert code == 2 and "--time-budget only" in err
    assert not (tmp_path / "s").exists()


def test_report_does_not_default_into_the_repository():
    (to,) = [p for p in dict(commands())["genpas experiment report"].params if p.name == "to"]
    assert to.default is None
