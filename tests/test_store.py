"""The on-disk store: a manifest written last, damage detected in one line, the cache rebuilt, integer times exact."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from genpas.cli import main
from genpas.data import load_dataset
from genpas.data.load import LoadOptions
from genpas.data.store import SequenceStore, StoreError


def small_store(times) -> SequenceStore:
    offsets = np.array([0, 3, 5])
    items = np.array([0, 1, 2, 2, 0], dtype=np.int32)
    return SequenceStore(offsets, items, times, np.array(["u", "v"]), np.array(["a", "b", "c"]), {"note": 1})


@pytest.mark.parametrize("times", [np.array([1, 2, 3, 2**62 + 1, 2**62 + 2]), np.array([0.5, 1.5, 2.0, 3.0, 3.0])])
def test_round_trip_keeps_every_array_and_the_time_type(tmp_path, times):
    store = small_store(times)
    store.save(tmp_path / "s", source={"path": "x"})
    for mmap in (False, True):
        back = SequenceStore.load(tmp_path / "s", mmap=mmap, verify="full")
        assert back.times.dtype == times.dtype and np.array_equal(back.times, times)
        assert np.array_equal(back.items, store.items) and np.array_equal(back.offsets, store.offsets)
        assert list(back.user_ids) == ["u", "v"] and list(back.item_ids) == ["a", "b", "c"]
        assert back.stats == {"note": 1}
        assert back.items.flags.writeable != mmap  # a read-only map of the file, not a copy
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["counts"] == {"users": 2, "items": 3, "interactions": 5}
    assert manifest["source"] == {"path": "x"}
    assert set(manifest["files"]) == {"offsets.npy", "items.npy", "times.npy", "users.parquet", "items.parquet"}


def damage(directory, how):
    if how == "no manifest":
        (directory / "manifest.json").unlink()
    elif how == "old format":
        (directory / "manifest.json").unlink()
        (directory / "stats.json").write_text("{}")
    elif how == "manifest garbage":
        (directory / "manifest.json").write_text("{not json")
    elif how == "other version":
        manifest = json.loads((directory / "manifest.json").read_text())
        (directory / "manifest.json").write_text(json.dumps({**manifest, "version": 1}))
    elif how == "truncated items":
        data = (directory / "items.npy").read_bytes()
        (directory / "items.npy").write_bytes(data[:-4])
    elif how == "missing times":
        (directory / "times.npy").unlink()
    elif how == "flipped byte":  # same size: the last item code's high byte, far outside the catalogue
        data = bytearray((directory / "items.npy").read_bytes())
        data[-1] ^= 0xFF
        (directory / "items.npy").write_bytes(bytes(data))
    elif how == "garbage id map":
        size = (directory / "users.parquet").stat().st_size
        (directory / "users.parquet").write_bytes(b"x" * size)
    elif how == "not a directory":
        for f in directory.iterdir():
            f.unlink()
        directory.rmdir()
        directory.write_text("hello")


DAMAGE = {  # how -> what the one line says under verify="full", and under the cheap verify="sizes" (None: unseen)
    "no manifest": ("no manifest.json", "no manifest.json"),
    "old format": ("older format", "older format"),
    "manifest garbage": ("damaged manifest", "damaged manifest"),
    "other version": ("format version 1", "format version 1"),
    "truncated items": ("truncated", "truncated"),
    "missing times": ("missing", "missing"),
    "flipped byte": ("checksum", "item codes outside"),  # same size: the checksum sees it, and the code range check
    "garbage id map": ("checksum", "unreadable id map"),
    "not a directory": ("not a directory", "not a directory"),
}


@pytest.mark.parametrize("how", DAMAGE)
def test_damage_is_one_line_naming_it(tmp_path, how):
    small_store(np.arange(5)).save(tmp_path / "s")
    damage(tmp_path / "s", how)
    full, sizes = DAMAGE[how]
    with pytest.raises(StoreError, match=full) as exc:
        SequenceStore.load(tmp_path / "s", verify="full")
    assert "\n" not in str(exc.value)
    if sizes is None:
        SequenceStore.load(tmp_path / "s", verify="sizes")
    else:
        with pytest.raises(StoreError, match=sizes):
            SequenceStore.load(tmp_path / "s", mmap=True, verify="sizes")


@pytest.mark.parametrize("verify", ["sizes", "full"])
def test_codes_out_of_range_are_refused_on_every_load(tmp_path, verify):
    store = small_store(np.arange(5))
    store.items[1] = 7  # an item code past the catalogue, written with a valid manifest
    store.save(tmp_path / "s")
    with pytest.raises(StoreError, match="item codes outside"):
        SequenceStore.load(tmp_path / "s", verify=verify)


@pytest.mark.parametrize("verify", ["sizes", "full"])
def test_falling_offsets_of_the_right_size_are_refused_on_every_load(tmp_path, verify):
    small_store(np.arange(5)).save(tmp_path / "s")
    offsets = np.load(tmp_path / "s" / "offsets.npy")
    offsets[1] = offsets[-1] + 1  # same file size, so the size check passes
    np.save(tmp_path / "s" / "offsets.npy", offsets)
    with pytest.raises(StoreError, match="offsets decrease" if verify == "sizes" else "checksum"):
        SequenceStore.load(tmp_path / "s", verify=verify)


@pytest.mark.parametrize("how", ["truncated items", "flipped byte", "no manifest", "garbage id map"])
def test_a_damaged_cache_entry_is_reported_and_rebuilt(tmp_path, caplog, how):
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\nu,a,1\nu,b,2\nv,a,3\nv,c,4\n")
    first = load_dataset(log)
    (entry,) = list_cache_entries()
    damage(entry, how)
    with caplog.at_level(logging.WARNING):
        again = load_dataset(log)
    assert "cache entry damaged" in caplog.text
    assert np.array_equal(again.items, first.items) and np.array_equal(again.times, first.times)
    SequenceStore.load(entry, verify="full")  # rebuilt in place, whole again


def list_cache_entries():
    import os
    from pathlib import Path

    return sorted((Path(os.environ["GENPAS_CACHE"]) / "stores").iterdir())


def test_cli_works_through_a_damaged_cache(tmp_path, capsys):
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\nu,a,1\nu,b,2\nv,a,3\nv,c,4\n")
    load_dataset(log)
    (entry,) = list_cache_entries()
    damage(entry, "truncated items")
    with pytest.raises(SystemExit) as exc:
        main(["data", "--data", str(log), "--json"])
    assert exc.value.code == 0
    assert json.loads(capsys.readouterr().out)["interactions"] == 4


def test_integer_timestamps_stay_exact(tmp_path):
    big = 2**60
    log = tmp_path / "log.csv"
    # Above 2^53, float64 would merge big+1 with big and reorder big+3 / big+2.
    log.write_text(f"user_id,item_id,timestamp\nu,a,{big + 3}\nu,b,{big + 2}\nu,c,{big}\nu,d,{big + 1}\nu,c,{big}\n")
    store = load_dataset(log)
    assert store.times.dtype == np.int64
    assert list(store.item_ids[store.sequence(0)]) == ["c", "d", "b", "a"]  # one exact duplicate dropped, no more
    assert list(store.times) == [big, big + 1, big + 2, big + 3]
    assert store.stats["duplicates_dropped"] == 1


def test_integer_parquet_timestamps_stay_exact(tmp_path):
    import polars as pl

    big = 2**60
    pl.DataFrame({"user_id": ["u", "u"], "item_id": ["a", "b"], "timestamp": [big + 1, big]}).write_parquet(tmp_path / "l.parquet")
    store = load_dataset(tmp_path / "l.parquet")
    assert list(store.times) == [big, big + 1] and list(store.item_ids[store.sequence(0)]) == ["b", "a"]


@pytest.mark.parametrize("stamp", [str(2**63), str(-(2**63) - 1), "99999999999999999999999"])
def test_timestamp_outside_int64_is_an_error_naming_the_line(tmp_path, capsys, stamp):
    log = tmp_path / "log.csv"
    log.write_text(f"user_id,item_id,timestamp\nu,a,1\nu,b,{stamp}\n")
    with pytest.raises(SystemExit) as exc:
        main(["data", "--data", str(log)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "line 3" in err and "int64" in err and "Traceback" not in err


def test_fractional_timestamps_are_float(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("user_id,item_id,timestamp\nu,a,1.5\nu,b,0.25\n")
    store = load_dataset(log, LoadOptions())
    assert store.times.dtype == np.float64 and list(store.times) == [0.25, 1.5]
