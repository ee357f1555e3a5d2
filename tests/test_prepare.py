"""`genpas prepare`: the engines give the in-process store exactly, and every command opens the store as --data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from conftest import EVENTS, write_all_formats

from genpas.cli import main
from genpas.data import load_dataset
from genpas.data.load import LoadOptions
from genpas.data.store import SequenceStore
from genpas.engines import PrepareOptions, prepare


def run(capsys, *args):
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def same_store(a: SequenceStore, b: SequenceStore) -> None:
    for name in ("offsets", "items", "times", "user_ids", "item_ids"):
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    for key in ("source_events", "duplicates_dropped", "kcore_rounds", "kcore_dropped"):
        assert a.stats.get(key) == b.stats.get(key), key


def busy_log(rng_seed=0, users=60, items=25, rows=900) -> pl.DataFrame:
    """Ties, exact duplicates and ids with leading zeros, in a shuffled source order."""
    rng = np.random.default_rng(rng_seed)
    df = pl.DataFrame({"user_id": [f"0{u}" for u in rng.integers(0, users, rows)],
                       "item_id": [f"i{i:03d}" for i in rng.zipf(1.6, rows) % items],
                       "timestamp": rng.integers(0, 40, rows)})  # few distinct times: many ties
    return pl.concat([df, df.sample(60, seed=rng_seed)])  # exact duplicates, later in the source


@pytest.mark.parametrize("kcore", [(0, 0), (3, 4), (12, 30)])
@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet"])
def test_polars_engine_gives_the_in_process_store(tmp_path, fmt, kcore):
    df = busy_log()
    path = tmp_path / f"log.{fmt}"
    if fmt == "parquet":
        df.write_parquet(path)
    else:
        df.write_csv(path, separator="\t" if fmt == "tsv" else ",")
    options = PrepareOptions(min_user_count=kcore[0], min_item_count=kcore[1], chunk_rows=97)  # many user ranges
    prepare(path, tmp_path / "store", "polars", options)
    mine = SequenceStore.load(tmp_path / "store", mmap=True, verify="full")
    same_store(mine, load_dataset(path, LoadOptions(min_user_count=kcore[0], min_item_count=kcore[1],
                                                    use_cache=False)))
    assert mine.stats["duplicates_dropped"] > 0


def test_a_directory_of_files_is_their_concatenation_in_path_order(tmp_path):
    df = busy_log(1)
    parts = tmp_path / "parts"
    parts.mkdir()
    for n, start in enumerate(range(0, df.height, 250)):
        df.slice(start, 250).write_parquet(parts / f"part-{n:02d}.parquet")
    df.write_parquet(tmp_path / "whole.parquet")
    prepare(parts, tmp_path / "a", "polars")
    prepare(tmp_path / "parts" / "part-*.parquet", tmp_path / "b", "polars")
    whole = load_dataset(tmp_path / "whole.parquet", LoadOptions(use_cache=False))
    same_store(SequenceStore.load(tmp_path / "a"), whole)
    same_store(SequenceStore.load(tmp_path / "b"), whole)


@pytest.mark.parametrize("label", ["ml-100k", "ml-1m", "amazon-2018", "recbole", "csv-semicolon"])
def test_every_reader_format_prepares(tmp_path, label):
    path = write_all_formats(tmp_path / "src")[label]
    prepare(path, tmp_path / "store", "polars")
    same_store(SequenceStore.load(tmp_path / "store", verify="full"), load_dataset(path, LoadOptions(use_cache=False)))


def test_integer_times_stay_exact_through_the_engine(tmp_path):
    big = 2**60
    pl.DataFrame({"user_id": ["u"] * 4, "item_id": ["a", "b", "c", "d"],
                  "timestamp": [big + 3, big + 2, big, big + 1]}).write_csv(tmp_path / "l.csv")
    prepare(tmp_path / "l.csv", tmp_path / "s", "polars")
    store = SequenceStore.load(tmp_path / "s")
    assert store.times.dtype == np.int64 and list(store.times) == [big, big + 1, big + 2, big + 3]
    assert list(store.item_ids[store.items]) == ["c", "d", "b", "a"]


def test_every_command_takes_the_store_as_data(tmp_path, capsys):
    path = write_all_formats(tmp_path / "src")["csv"]
    assert run(capsys, "prepare", "--data", path, "--out", tmp_path / "store")[0] == 0
    store = str(tmp_path / "store")
    code, out, _ = run(capsys, "data", "--data", store, "--json")
    assert code == 0 and json.loads(out)["interactions"] == 11
    for data, name in ((path, "a"), (store, "b")):
        assert run(capsys, "pairs", "--data", data, "--exact", "--split", "none", "--out", tmp_path / f"{name}.jsonl")[0] == 0
        assert run(capsys, "analyze", "--data", data, "--split", "none", "--out", tmp_path / f"{name}.json")[0] == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert {k: v for k, v in a.items() if k != "data"} == {k: v for k, v in b.items() if k != "data"}
    code, _, err = run(capsys, "train", "--data", store, "--epochs", "1", "--dim", "8", "--layers", "1", "--heads", "1",
                       "--max-len", "4", "--no-progress", "--out", tmp_path / "run")
    assert code == 0, err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["ndcg@10"] >= 0


def test_a_store_refuses_a_k_core_it_was_not_prepared_with(tmp_path, capsys):
    path = write_all_formats(tmp_path / "src")["csv"]
    prepare(path, tmp_path / "store", "polars")
    code, _, err = run(capsys, "data", "--data", tmp_path / "store", "--min-user-count", "3")
    assert code == 2 and "applies when preparing" in err


def bad_prepare_cases(tmp_path):
    good = write_all_formats(tmp_path / "src")["csv"]
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "nocol.csv").write_text("user,item_id,timestamp\nu,i,1\n")
    (tmp_path / "emptyuser.csv").write_text("user_id,item_id,timestamp\nu,i,1\n,j,2\n")
    (tmp_path / "badtime.csv").write_text("user_id,item_id,timestamp\nu,i,1\nu,j,yesterday\nu,k,2.5\n")
    (tmp_path / "huge.csv").write_text(f"user_id,item_id,timestamp\nu,i,1\nu,j,{2**64}\n")
    (tmp_path / "ragged.csv").write_text("user_id,item_id,timestamp\nu,i,1\nu,j,2,9\n")
    (tmp_path / "blank.csv").write_text("")
    (tmp_path / "twice.csv").write_text("user_id,item_id,item_id,timestamp\nu,i,j,1\n")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1garbage")
    prepare(good, tmp_path / "existing-store", "polars")
    return {  # name -> (args, text of the one line)
        "out is a file": (["--data", good, "--out", tmp_path / "a-file"], "not a directory"),
        "out holds other things": (["--data", good, "--out", tmp_path / "other"], "something other than a store"),
        "existing store": (["--data", good, "--out", tmp_path / "existing-store"], "--overwrite"),
        "out inside the source": (["--data", tmp_path / "src", "--out", tmp_path / "src" / "store"], "inside the source"),
        "no such source": (["--data", tmp_path / "nope.csv", "--out", tmp_path / "s"], "no such file"),
        "no files in directory": (["--data", tmp_path / "empty-dir", "--out", tmp_path / "s"], "no .csv"),
        "missing column": (["--data", tmp_path / "nocol.csv", "--out", tmp_path / "s"], "no column 'user_id'"),
        "empty user id": (["--data", tmp_path / "emptyuser.csv", "--out", tmp_path / "s"], "data row 2: empty user"),
        "bad timestamp": (["--data", tmp_path / "badtime.csv", "--out", tmp_path / "s"], "data row 2"),
        "timestamp past int64": (["--data", tmp_path / "huge.csv", "--out", tmp_path / "s"], "int64"),
        "unknown engine": (["--data", good, "--out", tmp_path / "s", "--engine", "dask"], "unknown 'dask'"),
        "k-core empties it": (["--data", good, "--out", tmp_path / "s", "--min-user-count", "99"], "nothing left"),
        "negative k-core": (["--data", good, "--out", tmp_path / "s", "--min-item-count", "-1"], ">= 0"),
        "a row with an extra field": (["--data", tmp_path / "ragged.csv", "--out", tmp_path / "s"],
                                      "ragged.csv: cannot read it as csv"),
        "an empty file": (["--data", tmp_path / "blank.csv", "--out", tmp_path / "s"], "blank.csv"),
        "a column named twice": (["--data", tmp_path / "twice.csv", "--out", tmp_path / "s"],
                                 "twice.csv: the header names column 'item_id' twice; rename one of them"),
        "a corrupt parquet file": (["--data", tmp_path / "broken.parquet", "--out", tmp_path / "s"],
                                   "broken.parquet: cannot read it as parquet"),
    }


CASES = ["out is a file", "out holds other things", "existing store", "out inside the source", "no such source",
         "no files in directory", "missing column", "empty user id", "bad timestamp", "timestamp past int64",
         "unknown engine", "k-core empties it", "negative k-core", "a row with an extra field", "an empty file",
         "a column named twice", "a corrupt parquet file"]


@pytest.mark.parametrize("case", CASES)
def test_bad_prepare_input_is_one_line_and_changes_nothing(tmp_path, capsys, case):
    args, text = bad_prepare_cases(tmp_path)[case]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, _, err = run(capsys, "prepare", *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and text in lines[0] and "Traceback" not in err, err
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing left behind (no temporary directory either)
    assert not (tmp_path / "s").exists()


def test_overwrite_replaces_a_store(tmp_path, capsys):
    good = write_all_formats(tmp_path / "src")["csv"]
    prepare(good, tmp_path / "store", "polars")
    code, _, _ = run(capsys, "prepare", "--data", good, "--out", tmp_path / "store", "--overwrite",
                     "--min-user-count", "4")
    assert code == 0 and SequenceStore.load(tmp_path / "store").num_users == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "store"]


def test_events_in_the_same_order_as_the_source_rows(tmp_path):
    rows = [(u, i, t) for u, i, t in EVENTS]
    pl.DataFrame({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                  "timestamp": [r[2] for r in rows]}).write_csv(tmp_path / "l.csv")
    prepare(tmp_path / "l.csv", tmp_path / "s", "polars")
    store = SequenceStore.load(tmp_path / "s")
    u2 = list(store.user_ids).index("u2")
    assert list(store.item_ids[store.sequence(u2)]) == ["b", "c", "c", "a"]  # the t=200 tie keeps source order


def test_search_takes_the_store_as_data(tmp_path, capsys):
    from genpas.data.synth import SynthConfig, synthesize, write_table

    write_table(synthesize(SynthConfig(users=60, items=30, mean_length=8, seed=5)), tmp_path / "l.csv")
    prepare(tmp_path / "l.csv", tmp_path / "store")
    (tmp_path / "c.yaml").write_text("dim: 8\nlayers: 1\nheads: 1\nmax_len: 5\nepochs: 1\n")
    code, _, err = run(capsys, "search", "--data", tmp_path / "store", "--out", tmp_path / "s", "--top-k", "1",
                       "--config", tmp_path / "c.yaml", "--no-progress")
    assert code == 0, err
    assert json.loads((tmp_path / "s" / "search.json").read_text())["best"]["valid"]["ndcg@10"] >= 0
