"""The Spark engine (local mode) gives the polars engine's store exactly, and its errors are one line."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from test_prepare import busy_log, same_store

from genpas.cli import main
from genpas.data.store import SequenceStore
from genpas.engines import PrepareOptions, prepare

pytest.importorskip("pyspark", reason="the spark extra is not installed (make test installs it)")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fmt, kcore", [("csv", (0, 0)), ("tsv", (3, 4)), ("parquet-parts", (0, 0))])
def test_spark_gives_the_polars_store(tmp_path, fmt, kcore):
    df = busy_log(2)
    if fmt == "parquet-parts":  # several files: source order is path order, then row order
        source = tmp_path / "parts"
        source.mkdir()
        for n, start in enumerate(range(0, df.height, 300)):
            df.slice(start, 300).write_parquet(source / f"part-{n}.parquet")
    else:
        source = tmp_path / f"log.{fmt}"
        df.write_csv(source, separator="\t" if fmt == "tsv" else ",")
    options = PrepareOptions(min_user_count=kcore[0], min_item_count=kcore[1], chunk_rows=150)
    prepare(source, tmp_path / "polars", "polars", options)
    prepare(source, tmp_path / "spark", "spark", options)
    a = SequenceStore.load(tmp_path / "polars", verify="full")
    b = SequenceStore.load(tmp_path / "spark", verify="full")
    same_store(a, b)
    assert a.num_interactions > 0


def test_spark_keeps_integer_times_exact_and_names_bad_rows(tmp_path, capsys):
    big = 2**60
    pl.DataFrame({"user_id": ["u"] * 4, "item_id": ["a", "b", "c", "d"],
                  "timestamp": [big + 3, big + 2, big, big + 1]}).write_csv(tmp_path / "l.csv")
    prepare(tmp_path / "l.csv", tmp_path / "s", "spark")
    store = SequenceStore.load(tmp_path / "s")
    assert store.times.dtype == np.int64 and list(store.times) == [big, big + 1, big + 2, big + 3]
    (tmp_path / "huge.csv").write_text(f"user_id,item_id,timestamp\nu,i,1\nu,j,{2**64}\n")
    (tmp_path / "emptyitem.csv").write_text("user_id,item_id,timestamp\nu,i,1\nu,,2\n")
    (tmp_path / "dayfirst.csv").write_text("user_id,item_id,timestamp\nu,i,2020-01-05\nu,j,01/02/2020\n")
    for name, text in (("huge.csv", "int64"), ("emptyitem.csv", "empty item id"),
                       ("dayfirst.csv", "may be day-first or month-first")):
        with pytest.raises(SystemExit) as exc:
            main(["prepare", "--engine", "spark", "--data", str(tmp_path / name), "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and text in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "x").exists()


def test_spark_pairs_are_the_polars_pairs(tmp_path):
    from genpas.augment import genpas
    from genpas.engines.pairs import PairJob, write_pairs

    busy_log(3).write_csv(tmp_path / "log.csv")
    prepare(tmp_path / "log.csv", tmp_path / "store", "polars")
    job = PairJob(str(tmp_path / "store"), genpas(0.5, 1, -1), "loo", 4_000, seed=11, max_len=6)
    write_pairs(job, tmp_path / "polars", "polars", partitions=2)
    write_pairs(job, tmp_path / "spark", "spark", partitions=5)
    a = pl.read_parquet(tmp_path / "polars" / "*.parquet")
    b = pl.read_parquet(tmp_path / "spark" / "*.parquet")
    assert a.height == b.height == 4_000
    key = ["user", "k", "j"]
    assert a.sort(key, maintain_order=True).equals(b.sort(key, maintain_order=True))


def test_spark_analysis_equals_in_process(tmp_path):
    from genpas.analysis import analyze
    from genpas.augment import genpas
    from genpas.data import load_dataset
    from genpas.engines.analysis import AnalysisJob, analyze_at_scale

    busy_log(4).write_csv(tmp_path / "log.csv")
    prepare(tmp_path / "log.csv", tmp_path / "store", "polars")
    job = AnalysisJob(str(tmp_path / "store"), genpas(0.5, 1, -1))
    mine = analyze_at_scale(job, "spark", partitions=4)
    theirs = analyze(load_dataset(tmp_path / "store"), job.strategy, samples=1)
    assert mine["kl"] == pytest.approx(theirs["kl"], rel=1e-12)
    assert mine["target_distribution"] == pytest.approx(theirs["target_distribution"], rel=1e-9, abs=1e-15)


def test_spark_reads_quotes_in_a_tsv_as_the_other_engines(tmp_path):
    (tmp_path / "q.tsv").write_text('user_id\titem_id\ttimestamp\nu\t"a"\t1\nu\ta\t2\nv\t"b\t3\nv\tc\t4\n')
    prepare(tmp_path / "q.tsv", tmp_path / "polars", "polars")
    prepare(tmp_path / "q.tsv", tmp_path / "spark", "spark")
    same_store(SequenceStore.load(tmp_path / "polars"), SequenceStore.load(tmp_path / "spark"))
    assert len(SequenceStore.load(tmp_path / "spark").item_ids) == 4  # '"a"', 'a', '"b' and 'c'
