"""Preprocessing: canonical events -> SequenceStore.

Steps, in order (each documented in README "Data"):
1. Exact duplicate events (same user, item and time) are dropped, keeping the first; the count is reported.
   Repeated consumption at different times is kept: it is real sequential signal.
2. Optional iterative k-core: drop users with fewer than `min_user_count` events and items with fewer than
   `min_item_count`, repeatedly, until neither rule removes anything (a fixed point).
3. Each user's events are sorted by time with a stable sort: ties keep the order of the source file.
4. Users and items get contiguous codes in order of first appearance in the (filtered) source.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from genpas.data.store import SequenceStore, time_array
from genpas.errors import GenpasError


def encode(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..V-1 in order of first appearance, and the distinct values in that order."""
    distinct = values.unique(maintain_order=True)
    lookup = pl.DataFrame({"v": distinct, "code": np.arange(len(distinct), dtype=np.int64)})
    codes = pl.DataFrame({"v": values}).join(lookup, on="v", how="left", maintain_order="left")["code"].to_numpy()
    return codes, distinct.to_numpy()


def kcore_mask(users: np.ndarray, items: np.ndarray, min_user: int, min_item: int) -> tuple[np.ndarray, int]:
    """Boolean mask of the events that survive the iterative k-core, and the number of rounds it took."""
    keep = np.ones(len(users), dtype=bool)
    rounds = 0
    while True:
        rounds += 1
        u_count = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        i_count = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        new_keep = keep & (u_count[users] >= min_user) & (i_count[items] >= min_item)
        if new_keep.sum() == keep.sum():
            return new_keep, rounds
        keep = new_keep


def build_store(events: pl.DataFrame, min_user_count: int = 0, min_item_count: int = 0, source: str = "") -> SequenceStore:
    """Turn a canonical (user, item, time) table into a SequenceStore; see the module docstring for the steps."""
    stats: dict = {"source_events": events.height}
    events = events.unique(subset=["user", "item", "time"], keep="first", maintain_order=True)
    stats["duplicates_dropped"] = stats["source_events"] - events.height

    users, _ = encode(events["user"])
    items, _ = encode(events["item"])
    keep = np.ones(len(users), dtype=bool)
    if min_user_count > 1 or min_item_count > 1:
        keep, rounds = kcore_mask(users, items, max(min_user_count, 1), max(min_item_count, 1))
        stats["kcore_rounds"] = rounds
        stats["kcore_dropped"] = int((~keep).sum())
        if not keep.any():
            raise GenpasError(
                f"{source}: nothing left after the k-core filter (--min-user-count {min_user_count}, "
                f"--min-item-count {min_item_count}); lower the thresholds"
            )
        events = events.filter(pl.Series(keep))
    # Re-encode so codes stay contiguous (and in order of first appearance) after filtering.
    users, user_ids = encode(events["user"])
    items, item_ids = encode(events["item"])
    times = time_array(events["time"].to_numpy())  # int64 stays int64: exact order
    order = np.lexsort((np.arange(len(users)), times, users))  # user, then time, then source order
    lengths = np.bincount(users, minlength=len(user_ids))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return SequenceStore(offsets, items[order].astype(np.int32), times[order], user_ids, item_ids, stats)
