"""SequenceStore: every user's chronological item sequence in two flat arrays.

    offsets  int64 [U + 1]   user u's events are items[offsets[u]:offsets[u + 1]]
    items    int32 [N]       contiguous item codes 0 .. I-1
    times    float64 [N]     the event times (kept for inspection; order is already resolved)
    user_ids str [U]         original user id of each user code (the reversible mapping)
    item_ids str [I]         original item id of each item code

Memory is linear in the number of interactions and nothing is per-user Python objects, so MovieLens-20M fits in a
few hundred MB. Everything downstream (split, samplers, analysis) works on offsets + items with NumPy.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl


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
        self.times = np.asarray(self.times, dtype=np.float64)
        assert self.offsets[0] == 0 and self.offsets[-1] == len(self.items) == len(self.times)
        assert len(self.user_ids) == len(self.offsets) - 1

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

    # ---- persistence (no pickle: arrays in .npy, ids in parquet, stats in JSON)
    def save(self, directory: Path) -> None:
        """Write atomically: a temporary directory renamed into place, so a reader never sees half a store."""
        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
        try:
            np.save(tmp / "offsets.npy", self.offsets)
            np.save(tmp / "items.npy", self.items)
            np.save(tmp / "times.npy", self.times)
            pl.DataFrame({"user_id": pl.Series(self.user_ids, dtype=pl.Utf8)}).write_parquet(tmp / "users.parquet")
            pl.DataFrame({"item_id": pl.Series(self.item_ids, dtype=pl.Utf8)}).write_parquet(tmp / "items.parquet")
            (tmp / "stats.json").write_text(json.dumps(self.stats, indent=1))
            if directory.exists():
                shutil.rmtree(directory)
            os.replace(tmp, directory)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, directory: Path) -> "SequenceStore":
        directory = Path(directory)
        return cls(
            offsets=np.load(directory / "offsets.npy", allow_pickle=False),
            items=np.load(directory / "items.npy", allow_pickle=False),
            times=np.load(directory / "times.npy", allow_pickle=False),
            user_ids=pl.read_parquet(directory / "users.parquet")["user_id"].to_numpy(),
            item_ids=pl.read_parquet(directory / "items.parquet")["item_id"].to_numpy(),
            stats=json.loads((directory / "stats.json").read_text()),
        )
