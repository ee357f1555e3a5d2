"""Interaction logs as users bring them: read the same by the in-process loader and by `genpas prepare`, or refused
by both with one line that says what to give instead (never read by a guess that reorders the events)."""

from __future__ import annotations

import gzip
import json

import pytest

from genpas.data import load_dataset
from genpas.data.load import LoadOptions
from genpas.data.store import SequenceStore
from genpas.engines import PrepareOptions, prepare

ROWS = [("u1", "a", "2020-01-01T10:00:00Z"), ("u1", "b", "2020-01-01T13:00:00+02:00"), ("u1", "c", "2020-01-02T00:00:00Z"),
        ("u2", "a", "2020-01-03T00:00:00Z"), ("u2", "c", "2020-01-02T22:00:00-05:00")]


def _same_store(path, tmp_path, **columns):
    """The in-process store of `path`, checked equal, array by array, to the polars engine's."""
    from test_prepare import same_store

    direct = load_dataset(path, LoadOptions(**{f"{k}_col": v for k, v in columns.items()}, use_cache=False))
    prepare(path, tmp_path / "store", "polars", PrepareOptions(**{f"{k}_col": v for k, v in columns.items()}))
    same_store(SequenceStore.load(tmp_path / "store"), direct)
    return direct


def test_iso_times_with_zones_are_read_alike_by_the_loader_and_the_engine(tmp_path):
    path = tmp_path / "zones.csv"
    path.write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in ROWS))
    direct = _same_store(path, tmp_path)
    # u1: a at 10:00Z, b at 11:00Z (13:00+02:00), c the next day; u2: c at 03:00Z on the 3rd follows a at 00:00Z
    items = list(direct.item_ids)
    assert [items[i] for i in direct.sequence(0)] == ["a", "b", "c"]
    assert [items[i] for i in direct.sequence(1)] == ["a", "c"]


@pytest.mark.parametrize("date", ["01/02/2020", "13.02.2020", "01-02-2020 10:00:00"])
def test_day_month_dates_are_refused_by_the_loader_and_the_engine(tmp_path, cli, date):
    path = tmp_path / "us.csv"
    path.write_text(f"user_id,item_id,timestamp\nu1,a,{date}\nu1,b,2020-03-01\n")
    for command in (["data", "--data", path], ["prepare", "--data", path, "--out", tmp_path / "st"]):
        code, out = cli([str(a) for a in command])
        assert code == 2 and "may be day-first or month-first; give ISO 8601 dates" in out.err, out.err
        assert len(out.err.strip().splitlines()) == 1
    assert not (tmp_path / "st").exists()


def test_a_headerless_file_that_is_not_amazon_s_layout_is_not_ordered_by_its_ratings(tmp_path, cli):
    path = tmp_path / "events.csv"  # user,item,timestamp,rating with no header: the third field is no rating
    path.write_text("u1,a,1586000000,5\nu1,b,1586000100,1\n")
    code, out = cli(["data", "--data", str(path)])
    assert code == 2 and "the first line (u1, a, 1586000000, 5) looks like data, not a header; add a header" in out.err
    amazon = tmp_path / "ratings.csv"  # Amazon's own layout still reads: user,item,rating,timestamp
    amazon.write_text("u1,a,5.0,1586000100\nu1,b,4.0,1586000000\n")
    store = load_dataset(amazon, LoadOptions(use_cache=False))
    assert [store.item_ids[i] for i in store.sequence(0)] == ["b", "a"]


def test_carriage_return_line_ends_are_one_line_of_error(tmp_path, cli):
    path = tmp_path / "mac.csv"
    path.write_bytes(b"user_id,item_id,timestamp\ru1,a,1\ru1,b,2\r")
    for command in (["data", "--data", path], ["prepare", "--data", path, "--out", tmp_path / "st"]):
        code, out = cli([str(a) for a in command])
        assert code == 2 and "its lines end in a carriage return alone (old Mac text)" in out.err, out.err


def test_a_gzipped_csv_is_read_alike_by_the_loader_and_the_engine(tmp_path):
    path = tmp_path / "reviews.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("reviewer,product,stars,unix_time\n" + "".join(f"u{k % 3},i{k % 5},4,{k}\n" for k in range(30)))
    direct = _same_store(path, tmp_path, user="reviewer", item="product", time="unix_time")
    assert direct.num_interactions == 30 and direct.num_users == 3


def test_review_json_lines_take_the_columns_the_user_names(tmp_path, cli):
    dump = tmp_path / "Beauty.jsonl"  # a 2023 dump: the item is parent_asin unless --item-col says asin
    dump.write_text("".join(json.dumps({"user_id": "u1", "parent_asin": "P", "asin": a, "timestamp": t * 1000}) + "\n"
                            for a, t in (("x", 1), ("y", 2), ("z", 3))))
    assert load_dataset(dump, LoadOptions(use_cache=False)).num_items == 1
    by_asin = load_dataset(dump, LoadOptions(item_col="asin", use_cache=False))
    assert list(by_asin.item_ids) == ["x", "y", "z"]
    own = tmp_path / "mine.jsonl"  # a JSON-lines log with fields of its own
    own.write_text("".join(json.dumps({"reviewer": u, "product": p, "when": t}) + "\n"
                           for u, p, t in (("u1", "a", 5), ("u1", "b", 3), ("u2", "a", 1))))
    store = load_dataset(own, LoadOptions(user_col="reviewer", item_col="product", time_col="when", use_cache=False))
    assert [store.item_ids[i] for i in store.sequence(0)] == ["b", "a"] and sorted(store.times) == [1, 3, 5]
    code, out = cli(["data", "--data", str(own)])
    assert code == 2 and "no Amazon review fields" in out.err and "found product, reviewer, when" in out.err
    assert "(name the fields of another log with --user-col, --item-col and --time-col)" in out.err
    code, out = cli(["data", "--data", str(own), "--time-col", "ts"])
    assert code == 2 and "or the fields named by --time-col ts; found product, reviewer, when" in out.err
