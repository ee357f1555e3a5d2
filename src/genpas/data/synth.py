"""Synthetic interaction logs with the structure real logs have, for tests and benchmarks.

Each user's sequence is built step by step (vectorised over users, looped over positions):
- with probability `p_transition`, the next item is one of the previous item's few successors (item-to-item
  transitions, so that sequential models have something to learn);
- with probability `p_repeat`, an item from the last few steps comes back (repeat consumption, recency);
- otherwise an item drawn from a Zipf popularity law (a long tail).
Lengths are `min_length` plus a geometric tail with the requested mean. Times grow by exponential gaps, rounded to
whole seconds, so ties occur as in real logs. 20M interactions take well under a minute; memory is linear in them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from genpas.atomic import atomic_path
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError


@dataclass(frozen=True)
class SynthConfig:
    users: int = 1000
    items: int = 500
    mean_length: float = 20.0
    min_length: int = 3
    zipf: float = 1.0  # popularity exponent: p(rank r) ~ r^-zipf
    p_transition: float = 0.5
    p_repeat: float = 0.1
    successors: int = 4
    seed: int = 0

    def validate(self) -> None:
        for name in ("mean_length", "zipf", "p_transition", "p_repeat"):  # NaN passes every comparison below
            if not math.isfinite(getattr(self, name)):
                raise GenpasError(f"synth: --{name.replace('_', '-')} must be a finite number, got {getattr(self, name)}")
        if self.users < 1 or self.items < 1:
            raise GenpasError("synth: --users and --items must be at least 1")
        if self.min_length < 1 or self.mean_length < self.min_length:
            raise GenpasError("synth: need 1 <= --min-length <= --mean-length")
        if not (0 <= self.p_transition and 0 <= self.p_repeat and self.p_transition + self.p_repeat <= 1):
            raise GenpasError("synth: need p_transition, p_repeat >= 0 with p_transition + p_repeat <= 1")


def synthesize(config: SynthConfig) -> pl.DataFrame:
    """A canonical-column table (user_id, item_id, timestamp) of integer ids, sorted by user then time."""
    lengths, items, time = _generate(config)
    user = np.repeat(np.arange(1, config.users + 1, dtype=np.int64), lengths)
    return pl.DataFrame({"user_id": user, "item_id": items + 1, "timestamp": time.astype(np.int64)})


def synthesize_store(config: SynthConfig) -> SequenceStore:
    """The same log directly as a SequenceStore (ids "1".."U" and "1".."I"), skipping the table: for benchmarks."""
    lengths, items, time = _generate(config)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return SequenceStore(offsets, items.astype(np.int32), time,
                         np.arange(1, config.users + 1).astype(str), np.arange(1, config.items + 1).astype(str),
                         {"source": f"synth {config}"})


def _generate(config: SynthConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lengths, 0-based items, times) of the synthetic log, users in order, events in time order."""
    config.validate()
    rng = np.random.default_rng(config.seed)
    extra = config.mean_length - config.min_length
    tail = rng.geometric(1.0 / (extra + 1.0), size=config.users) - 1 if extra > 0 else np.zeros(config.users, np.int64)
    lengths = (config.min_length + tail).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    total = int(offsets[-1])

    popularity = np.cumsum(1.0 / np.arange(1, config.items + 1) ** config.zipf)
    popularity /= popularity[-1]
    shuffle = rng.permutation(config.items)  # popularity rank is not item id order

    def popular(size: int) -> np.ndarray:
        return shuffle[np.minimum(np.searchsorted(popularity, rng.random(size), side="right"), config.items - 1)]

    successor = popular(config.items * config.successors).reshape(config.items, config.successors)
    items = np.empty(total, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")  # users by decreasing length: the active set is a prefix
    sorted_lengths = lengths[order]
    starts = offsets[:-1][order]
    for t in range(int(lengths.max())):
        active = int(np.searchsorted(-sorted_lengths, -t, side="left"))  # users with length > t
        idx = starts[:active] + t
        chosen = popular(active)
        if t > 0:
            draw = rng.random(active)
            move = draw < config.p_transition
            prev = items[idx[move] - 1]
            chosen[move] = successor[prev, rng.integers(config.successors, size=int(move.sum()))]
            rep = (draw >= config.p_transition) & (draw < config.p_transition + config.p_repeat)
            back = np.minimum(rng.integers(1, 6, size=int(rep.sum())), t)
            chosen[rep] = items[idx[rep] - back]
        items[idx] = chosen

    gaps = np.round(rng.exponential(3600.0, size=total))
    start = rng.integers(900_000_000, 1_500_000_000, size=config.users).astype(np.float64)
    cum = np.cumsum(gaps)
    base = np.repeat(cum[offsets[:-1]] - gaps[offsets[:-1]], lengths)
    time = np.repeat(start, lengths) + cum - base
    return lengths, items, time


def write_table(df: pl.DataFrame, path: Path) -> None:
    """Write csv/tsv/parquet by extension, atomically (temporary name, then rename)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".parquet"):
        raise GenpasError(f"{path}: unsupported output extension; use .csv, .tsv or .parquet")
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.write_parquet(tmp)
        else:
            df.write_csv(tmp, separator="\t" if suffix == ".tsv" else ",")
