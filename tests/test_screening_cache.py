"""The search's screening cache: a faithful round trip (infinities included), and every kind of damage refused."""

from __future__ import annotations

import json

import pytest

from genpas.errors import GenpasError
from genpas.search import screening_cache
from genpas.search.screening import ranked

GRID = [(1.0, 0.0, float("-inf")), (0.0, 1.0, 1.0), (0.0, float("inf"), 0.0), (0.5, 0.0, 0.0)]
FACTS = {"data": "x", "grid": screening_cache.json_safe([list(g) for g in GRID])}


def rows():
    out = [{"alpha": a, "beta": b, "gamma": g, "kl": 0.1 * i, "survivor": i < 2} for i, (a, b, g) in enumerate(GRID)]
    for i, row in enumerate(out):
        survived = dict(alignment=0.5, discrimination=0.0 if i == 0 else 0.25, ratio=float("inf") if i == 0 else 2.0,
                        ratio_se=0.0)
        row.update(survived if row["survivor"] else dict.fromkeys(survived))
    return ranked(out)


def test_round_trip_keeps_every_number_infinities_included(tmp_path):
    path = screening_cache.cache_path(tmp_path, FACTS)
    screening_cache.write(path, FACTS, rows(), 12.5)
    back, seconds = screening_cache.read(path, FACTS, GRID)
    assert back == rows() and seconds == 12.5
    assert back[0]["ratio"] == float("inf") and isinstance(back[0]["ratio"], float)  # not the string "inf"
    assert screening_cache.read(tmp_path / "none.json", FACTS, GRID) is None


def damaged(saved):
    return [
        ("a row cut away", {**saved, "rows": saved["rows"][:1]}, "not the grid's, each once"),
        ("a setting twice", {**saved, "rows": saved["rows"][:3] + saved["rows"][2:3]}, "not the grid's, each once"),
        ("rows reordered", {**saved, "rows": saved["rows"][::-1]}, "not in the screening's order"),
        ("survivor as text", {**saved, "rows": [{**saved["rows"][0], "survivor": "false"}] + saved["rows"][1:]},
         "not true or false"),
        ("a survivor without its ratio", {**saved, "rows": [{**saved["rows"][0], "ratio": None}] + saved["rows"][1:]},
         "ratio is None"),
        ("a dropped setting with a ratio", {**saved, "rows": saved["rows"][:3] + [{**saved["rows"][3], "ratio": 1.0}]},
         "did not survive the KL cut but has a ratio"),
        ("a number as a word", {**saved, "rows": [{**saved["rows"][0], "kl": "low"}] + saved["rows"][1:]},
         "kl is 'low'"),
        ("other facts", {**saved, "facts": {"data": "y"}}, "written for another screening"),
        ("no rows", {k: v for k, v in saved.items() if k != "rows"}, "list of rows"),
        ("seconds missing", {k: v for k, v in saved.items() if k != "seconds"}, "seconds is None"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_damage_is_one_error_saying_to_delete_the_file(tmp_path, case):
    path = screening_cache.cache_path(tmp_path, FACTS)
    screening_cache.write(path, FACTS, rows(), 1.0)
    name, content, needle = damaged(json.loads(path.read_text()))[case]
    path.write_text(json.dumps(content))
    with pytest.raises(GenpasError, match="delete it to screen again") as exc:
        screening_cache.read(path, FACTS, GRID)
    assert needle in str(exc.value), name


def test_deep_nesting_and_a_refused_write(tmp_path, caplog):
    path = screening_cache.cache_path(tmp_path, FACTS)
    path.write_text("[" * 100000)
    with pytest.raises(GenpasError, match="damaged"):
        screening_cache.read(path, FACTS, GRID)
    path.unlink()
    path.mkdir()  # a directory where the file would go: the write fails, the search goes on with a warning
    with caplog.at_level("WARNING"):
        screening_cache.write(path, FACTS, rows(), 1.0)
    assert "cannot keep the screening" in caplog.text
