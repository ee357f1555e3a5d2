"""Every reader turns the same small log into the same store; ids stay tokens; order and duplicates as documented."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXPECTED

from genpas.data import LoadOptions, load_dataset
from genpas.data.readers import detect_format, read_events
from genpas.errors import GenpasError

FORMAT_OF = {
    "csv": "csv", "csv-semicolon": "csv", "tsv": "tsv", "parquet": "parquet", "ml-100k": "movielens",
    "ml-1m": "movielens", "ml-20m": "movielens", "amazon-2018": "amazon", "amazon-2014-literal": "amazon",
    "amazon-2023": "amazon", "amazon-csv": "amazon", "recbole": "recbole",
}


@pytest.mark.parametrize("label", sorted(FORMAT_OF))
def test_every_format_reads_to_the_same_counts(all_formats, label):
    store = load_dataset(all_formats[label])
    assert (store.num_users, store.num_items, store.num_interactions) == tuple(EXPECTED.values())
    assert store.stats["duplicates_dropped"] == 1


@pytest.mark.parametrize("label", sorted(FORMAT_OF))
def test_format_detection(all_formats, label):
    from genpas.data.readers import _head

    path = all_formats[label]
    assert detect_format(path, _head(path)) == FORMAT_OF[label]


@pytest.mark.parametrize("label", sorted(FORMAT_OF))
def test_explicit_format_matches_detection(all_formats, label):
    path = all_formats[label]
    detected = load_dataset(path, LoadOptions(use_cache=False))
    explicit = load_dataset(path, LoadOptions(format=FORMAT_OF[label], use_cache=False))
    np.testing.assert_array_equal(detected.items, explicit.items)


@pytest.mark.parametrize("label", sorted(FORMAT_OF))
def test_sequences_are_chronological_with_ties_in_source_order(all_formats, label):
    store = load_dataset(all_formats[label])
    seqs = {store.user_ids[u]: [store.item_ids[i] for i in store.sequence(u)] for u in range(store.num_users)}
    assert seqs == {"u1": ["a", "b", "007"], "u2": ["b", "c", "c", "a"], "u3": ["a", "007", "b", "c"]}


def test_ids_are_tokens_not_numbers(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("user_id,item_id,timestamp\n007,01,1\n7,1,2\n007,1,3\n")
    store = load_dataset(path)
    assert sorted(store.user_ids.tolist()) == ["007", "7"]
    assert sorted(store.item_ids.tolist()) == ["01", "1"]


def test_custom_columns_and_extra_columns(tmp_path):
    path = tmp_path / "custom.csv"
    path.write_text("uid,extra,iid,when\nx,1,p,5\nx,2,q,6\ny,3,p,1\n")
    store = load_dataset(path, LoadOptions(user_col="uid", item_col="iid", time_col="when"))
    assert (store.num_users, store.num_items, store.num_interactions) == (2, 2, 3)


def test_datetime_strings_are_parsed(tmp_path):
    path = tmp_path / "dates.csv"
    path.write_text("user_id,item_id,timestamp\nx,b,2020-01-02 10:00:00\nx,a,2020-01-01 10:00:00\n")
    store = load_dataset(path)
    assert [store.item_ids[i] for i in store.sequence(0)] == ["a", "b"]


def test_canonical_table_columns(all_formats):
    df = read_events(all_formats["csv"])
    assert df.columns == ["user", "item", "time"]
    assert df.height == len(__import__("conftest").EVENTS)  # the reader drops nothing; duplicates go later


def test_cache_is_used_and_keyed_by_content(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user_id,item_id,timestamp\nx,a,1\nx,b,2\n")
    first = load_dataset(path)
    path.write_text("user_id,item_id,timestamp\nx,a,1\nx,b,2\ny,a,3\n")  # same name, new content
    second = load_dataset(path)
    assert (first.num_users, second.num_users) == (1, 2)
    again = load_dataset(path)
    np.testing.assert_array_equal(again.items, second.items)
    np.testing.assert_array_equal(again.user_ids, second.user_ids)


def test_formats_agree_on_a_larger_synthetic_log(tmp_path):
    from genpas.data.synth import SynthConfig, synthesize, write_table

    df = synthesize(SynthConfig(users=200, items=100, seed=3))
    write_table(df, tmp_path / "s.csv")
    write_table(df, tmp_path / "s.parquet")
    write_table(df, tmp_path / "s.tsv")
    stores = [load_dataset(tmp_path / n) for n in ("s.csv", "s.parquet", "s.tsv")]
    for s in stores[1:]:
        np.testing.assert_array_equal(s.items, stores[0].items)
        np.testing.assert_array_equal(s.offsets, stores[0].offsets)


def test_amazon_fast_path_equals_the_line_by_line_reader(all_formats):
    import polars as pl

    from genpas.data.amazon import _amazon_by_line, _amazon_fast
    from genpas.data.readers import read_bytes

    for label in ("amazon-2018", "amazon-2023"):
        raw = read_bytes(all_formats[label])
        keys = ("reviewerID", "asin", "unixReviewTime") if label == "amazon-2018" else ("user_id", "parent_asin", "timestamp")
        fast = _amazon_fast(raw, keys)
        assert fast is not None
        slow = _amazon_by_line(raw, all_formats[label], keys, python_literals=False)
        assert fast.equals(slow.with_columns(pl.col("time").cast(pl.Float64)))


@pytest.mark.parametrize("bad_line,needle", [
    ('{"reviewerID": "c", "unixReviewTime": 3}', "line 3"),
    ('{"reviewerID": "c", "asin": "z", "unixReviewTime": "soon"}', "line 3: unparseable timestamp"),
    ('{"reviewerID": "", "asin": "z", "unixReviewTime": 3}', "line 3: empty user id"),
])
def test_amazon_errors_name_the_line(tmp_path, bad_line, needle):
    from genpas.errors import GenpasError

    path = tmp_path / "reviews.json"
    path.write_text('{"reviewerID": "a", "asin": "x", "unixReviewTime": 1}\n'
                    '{"reviewerID": "b", "asin": "y", "unixReviewTime": 2}\n' + bad_line + "\n")
    with pytest.raises(GenpasError, match=needle):
        load_dataset(path)


@pytest.mark.parametrize("name,text,column", [
    ("twice.csv", "user_id,item_id,item_id,timestamp\nu,a,b,1\nu,c,d,2\n", "item_id"),
    ("twice.tsv", "user_id\titem_id\ttimestamp\ttimestamp\nu\ta\t1\t2\n", "timestamp"),
    ("quoted.csv", '"user_id","item_id","user_id",timestamp\nu,a,v,1\n', "user_id"),
    ("twice.inter", "user_id:token\titem_id:token\titem_id:token\ttimestamp:float\nu\ta\tb\t1\n", "item_id"),
    ("typed.inter", "user_id:token\titem_id:token\titem_id:float\ttimestamp:float\nu\ta\t2\t1\n", "item_id"),
])
def test_a_header_naming_a_used_column_twice_is_refused(tmp_path, name, text, column):
    (tmp_path / name).write_text(text)
    with pytest.raises(GenpasError, match=f"{name}: the header names column '{column}' twice; rename one of them"):
        read_events(tmp_path / name)


@pytest.mark.parametrize("name,text", [
    ("ok.csv", "user_id,item_id,timestamp,item_id_2\nu,a,1,x\nu,b,2,y\n"),
    ("tags.csv", "user_id,item_id,timestamp,tag,tag\nu,a,1,x,y\nu,b,2,x,y\n"),  # repeated, but not read
    ("export.csv", "user_id,item_id,timestamp,,\nu,a,1,,\nu,b,2,,\n"),  # a spreadsheet's empty trailing columns
    ("rating.inter", "user_id:token\titem_id:token\trating:float\trating:token\ttimestamp:float\n"
                     "u\ta\t1\t1\t1\nu\tb\t2\t2\t2\n"),
])
def test_repeated_names_of_columns_not_read_stay_harmless(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    assert read_events(tmp_path / name)["item"].to_list() == ["a", "b"]


def test_the_polars_engine_reads_quotes_in_a_tsv_as_the_in_process_reader(tmp_path):
    import numpy as np

    from genpas.data.load import LoadOptions, load_dataset
    from genpas.data.store import SequenceStore
    from genpas.engines.prepare import prepare

    (tmp_path / "q.tsv").write_text('user_id\titem_id\ttimestamp\nu\t"a"\t1\nu\ta\t2\nv\t"b\t3\n')
    prepare(tmp_path / "q.tsv", tmp_path / "store", "polars")  # quotes are plain characters in a TSV, as in process
    engine = SequenceStore.load(tmp_path / "store")
    in_process = load_dataset(tmp_path / "q.tsv", LoadOptions(use_cache=False))
    assert list(np.asarray(engine.item_ids)) == list(np.asarray(in_process.item_ids))
    assert len(engine.item_ids) == 3  # '"a"', 'a' and '"b': three items, one with an unclosed quote
    (tmp_path / "h.tsv").write_text('"user_id"\titem_id\ttimestamp\tuser_id\nu\ta\t1\tX\nv\tb\t2\tY\n')
    prepare(tmp_path / "h.tsv", tmp_path / "s2", "polars")  # the first name is '"user_id"' in both readers, so the
    engine = SequenceStore.load(tmp_path / "s2")              # users are the fourth column's, X and Y
    in_process = load_dataset(tmp_path / "h.tsv", LoadOptions(use_cache=False))
    assert list(np.asarray(engine.user_ids)) == list(np.asarray(in_process.user_ids)) == ["X", "Y"]
