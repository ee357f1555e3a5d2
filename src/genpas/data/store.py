"""SequenceStore: every user's chronological item sequence in two flat arrays.

    offsets  int64 [U + 1]   user u's events are items[offsets[u]:offsets[u + 1]]
    items    int32 [N]       contiguous item codes 0 .. I-1
    times    int64 or float64 [N]   the event times: int64 when the source's timestamps are integers (exact order,
                             nothing merged that differs), float64 otherwise
    user_ids str [U]         original user id of each user code (the reversible mapping)
    item_ids str [I]         original item id of each item code

Memory is linear in the number of interactions and nothing is per-user Python objects, so MovieLens-20M fits in a
few hundred MB. Everything downstream (split, samplers, analysis) works on offsets + items with NumPy.

On disk a store is a directory (the format `genpas prepare` writes and the cache uses):

    offsets.npy, items.npy, times.npy   the three arrays, plain .npy (memory-mappable: `load(..., mmap=True)`)
    users.parquet, items.parquet        the id maps (one Utf8 column each, row = code)
    manifest.json                       format and version, counts, what built it, and each file's size and SHA-256;
                                        written last, so a store without one is incomplete

`load` checks the manifest against the files (sizes always; checksums and value ranges with verify="full") and
raises one `StoreError` line naming what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from genpas.errors import GenpasError

FORMAT = "genpas-store"
FORMAT_VERSION = 2
ARRAYS = {"offsets.npy": "int64", "items.npy": "int32", "times.npy": None}  # None: int64 or float64
ID_MAPS = {"users.parquet": "user_id", "items.parquet": "item_id"}


class StoreError(GenpasError):
    """A store directory that is incomplete, damaged or of another format."""


def time_array(values) -> np.ndarray:
    """Event times as int64 when they are integers, else float64 (a memory map of either passes through)."""
    values = np.asarray(values)
    if values.dtype.kind in "iub":
        return values if values.dtype == np.int64 else values.astype(np.int64)
    return values if values.dtype == np.float64 else values.astype(np.float64)


@dataclass
class SequenceStore:
    offsets: np.ndarray
    items: np.ndarray
    times: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    stats: dict = field(default_factory=dict)  # what preprocessing did (duplicates dropped, k-core rounds, ...)

    def __post_init__(self):
        self.offsets = np.asarray(self.offsets, dtype=np.int64)
        self.items = np.asarray(self.items, dtype=np.int32)
        self.times = time_array(self.times)
        if not (self.offsets[0] == 0 and self.offsets[-1] == len(self.items) == len(self.times)):
            raise StoreError(f"inconsistent store: offsets end at {self.offsets[-1]} for {len(self.items)} items "
                             f"and {len(self.times)} times")
        if len(self.user_ids) != len(self.offsets) - 1:
            raise StoreError(f"inconsistent store: {len(self.user_ids)} user ids for {len(self.offsets) - 1} users")

    # ---- sizes
    @property
    def num_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, user: int) -> np.ndarray:
        return self.items[self.offsets[user] : self.offsets[user + 1]]

    def item_fingerprint(self) -> str:
        """SHA-256 of the item ids in code order: what a model's item codes stand for (checked when weights load)."""
        digest = hashlib.sha256()
        for lo in range(0, self.num_items, 1 << 20):  # JSON quotes every id: no two lists of ids hash alike
            digest.update(json.dumps([str(i) for i in self.item_ids[lo:lo + (1 << 20)].tolist()]).encode())
        return digest.hexdigest()

    def fingerprint(self) -> str:
        """SHA-256 of the whole store: every user's events in order with their times, and the user and item ids (the
        data's identity: a finished run is reused, and a run resumed, only on the data it was trained on)."""
        if "_fingerprint" not in self.__dict__:  # computed once per store (the arrays never change)
            digest = hashlib.sha256(self.item_fingerprint().encode())
            for lo in range(0, self.num_users, 1 << 20):
                digest.update(json.dumps([str(u) for u in self.user_ids[lo:lo + (1 << 20)].tolist()]).encode())
            for array in (self.offsets, self.items, self.times):
                digest.update(str(array.dtype).encode())
                for lo in range(0, len(array), 1 << 22):  # chunks of the (possibly memory-mapped) array, no copy
                    digest.update(np.ascontiguousarray(array[lo:lo + (1 << 22)]))
            self.__dict__["_fingerprint"] = digest.hexdigest()
        return self.__dict__["_fingerprint"]

    def user_index(self) -> np.ndarray:
        """The user code of every event (int64 [N])."""
        return np.repeat(np.arange(self.num_users, dtype=np.int64), self.lengths)

    def with_lengths(self, keep: np.ndarray) -> "SequenceStore":
        """A store holding the first keep[u] events of each user (used by the leave-one-out split)."""
        keep = np.minimum(np.asarray(keep, dtype=np.int64), self.lengths)
        position = np.arange(self.num_interactions) - np.repeat(self.offsets[:-1], self.lengths)
        mask = position < np.repeat(keep, self.lengths)
        offsets = np.concatenate([[0], np.cumsum(keep)])
        return SequenceStore(offsets, self.items[mask], self.times[mask], self.user_ids, self.item_ids, dict(self.stats))

    # ---- persistence (no pickle: arrays in .npy, ids in parquet, the rest in a JSON manifest written last)
    def save(self, directory: Path, **about) -> None:
        """Write atomically: a temporary directory renamed into place, so a reader never sees half a store.
        `about` (source fingerprint, options, engine ...) goes into the manifest as it is."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
        try:
            np.save(tmp / "offsets.npy", self.offsets)
            np.save(tmp / "items.npy", self.items)
            np.save(tmp / "times.npy", self.times)
            pl.DataFrame({"user_id": pl.Series(self.user_ids, dtype=pl.Utf8)}).write_parquet(tmp / "users.parquet")
            pl.DataFrame({"item_id": pl.Series(self.item_ids, dtype=pl.Utf8)}).write_parquet(tmp / "items.parquet")
            write_manifest(tmp, self.num_users, self.num_items, self.num_interactions, self.stats, about)
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(tmp, directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path, mmap: bool = False, verify: str = "sizes") -> "SequenceStore":
        """Open a store directory. mmap=True maps the arrays instead of reading them (resident memory stays small
        whatever the store's size, and processes on one machine share the page cache). verify='sizes' checks the
        manifest's counts and file sizes, the offsets and the item codes; verify='full' also checks every checksum and
        that each user's times do not decrease."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        check_files(directory, manifest, checksums=verify == "full")
        counts = manifest["counts"]
        arrays = {}
        for name, dtype in ARRAYS.items():
            try:
                arrays[name] = np.load(directory / name, mmap_mode="r" if mmap else None, allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise StoreError(f"{directory / name}: unreadable array ({exc}); rebuild the store") from None
            want = counts["users"] + 1 if name == "offsets.npy" else counts["interactions"]
            ok_dtype = arrays[name].dtype in (np.int64, np.float64) if dtype is None else arrays[name].dtype == dtype
            if arrays[name].shape != (want,) or not ok_dtype:
                raise StoreError(f"{directory / name}: holds {arrays[name].dtype}{list(arrays[name].shape)}, "
                                 f"the manifest says {dtype or 'int64 or float64'}[{want}]; rebuild the store")
        ids = {}
        for name, column in ID_MAPS.items():
            try:
                ids[name] = pl.read_parquet(directory / name, columns=[column])[column].to_numpy()
            except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
                raise StoreError(f"{directory / name}: unreadable id map ({type(exc).__name__}); rebuild the store") from None
        if len(ids["items.parquet"]) != counts["items"] or len(ids["users.parquet"]) != counts["users"]:
            raise StoreError(f"{directory}: the id maps do not match the manifest's counts; rebuild the store")
        store = cls(arrays["offsets.npy"], arrays["items.npy"], arrays["times.npy"], ids["users.parquet"],
                    ids["items.parquet"], dict(manifest.get("stats", {})))
        check_codes(store, directory)
        if verify == "full":
            check_values(store, directory)
        return store


# --------------------------------------------------------------------------------------------------------------------
# The manifest


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path, users: int, items: int, interactions: int, stats: dict, about: dict) -> None:
    """Record counts and every data file's size and checksum; the last file written into a store."""
    files = {name: {"bytes": (directory / name).stat().st_size, "sha256": sha256_file(directory / name)}
             for name in (*ARRAYS, *ID_MAPS)}
    manifest = {"format": FORMAT, "version": FORMAT_VERSION,
                "counts": {"users": int(users), "items": int(items), "interactions": int(interactions)},
                "stats": stats, **about, "files": files}
    tmp = directory / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, default=str))
    os.replace(tmp, directory / "manifest.json")


def read_manifest(directory: Path) -> dict:
    if not directory.is_dir():
        raise StoreError(f"{directory}: not a directory; a store is the directory `genpas prepare` writes")
    path = directory / "manifest.json"
    if not path.is_file():
        if (directory / "stats.json").is_file():
            raise StoreError(f"{directory}: a store of an older format (no manifest.json); prepare it again")
        raise StoreError(f"{directory}: no manifest.json, so not a complete store (an interrupted write?); "
                         "prepare it again")
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise StoreError(f"{path}: not a genpas store manifest")
        if manifest.get("version") != FORMAT_VERSION:
            raise StoreError(f"{path}: store format version {manifest.get('version')}, this genpas reads "
                             f"{FORMAT_VERSION}; prepare it again")
        counts = manifest["counts"]
        for key in ("users", "items", "interactions"):
            if not isinstance(counts[key], int) or counts[key] < 0:
                raise StoreError(f"{path}: bad count {key}={counts[key]!r}")
        for name in (*ARRAYS, *ID_MAPS):
            int(manifest["files"][name]["bytes"]), str(manifest["files"][name]["sha256"])
        for key in ("stats", "options"):
            if not isinstance(manifest.get(key, {}), dict):
                raise TypeError(f"{key!r} is a {type(manifest[key]).__name__}, not a mapping")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: damaged manifest ({type(exc).__name__}: {exc}); prepare the store again") from None
    return manifest


def check_files(directory: Path, manifest: dict, checksums: bool) -> None:
    for name, meta in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise StoreError(f"{path}: missing from the store; prepare it again")
        size = path.stat().st_size
        if size != meta["bytes"]:
            raise StoreError(f"{path}: {size} bytes, the manifest says {meta['bytes']} (truncated or replaced); "
                             "prepare the store again")
        if checksums and sha256_file(path) != meta["sha256"]:
            raise StoreError(f"{path}: checksum does not match the manifest (damaged); prepare the store again")


def check_codes(store: SequenceStore, directory: Path) -> None:
    """The invariants every consumer indexes by, checked on every load (one pass over offsets and items, cheap beside
    any use of the store): offsets rise from 0 to N and item codes lie in 0 .. I-1. A file replaced by one of the
    same size passes the size check; it fails here instead of deep inside a split or a model."""
    if np.any(np.diff(store.offsets) < 0):
        raise StoreError(f"{directory}/offsets.npy: offsets decrease; prepare the store again")
    if store.num_interactions and (store.items.min() < 0 or store.items.max() >= store.num_items):
        raise StoreError(f"{directory}/items.npy: item codes outside 0..{store.num_items - 1}; prepare the store again")


def check_values(store: SequenceStore, directory: Path) -> None:
    """Beyond check_codes (verify='full'): each user's times do not decrease."""
    step = np.diff(store.times)
    starts = store.offsets[1:-1]
    inner = np.ones(len(step), dtype=bool)
    inner[starts[(starts > 0) & (starts <= len(step))] - 1] = False
    if np.any(step[inner] < 0):
        raise StoreError(f"{directory}/times.npy: a user's times go backwards; prepare the store again")
