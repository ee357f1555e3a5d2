"""From sampled triples or windows to padded training batches, and the torch IterableDataset that streams them.

Every batch has the same three arrays, whatever the mode, so the trainer has one loss:

    inputs   int64 [B, W]    item code + 1, left-aligned (position 0 = the input's first item), 0 = padding
    targets  int64 [B, W]    item code predicted at each position, -1 where there is no target
    weights  float32 [B, W]  loss weight of each target; every row sums to 1

Left alignment makes the position encoding of an input independent of how it was cut (spec 5b), and is used at
evaluation too. `pairs` mode has one target per row, at the input's last position; `packed` mode has every target of
a window with its conditional probability as weight. W is the longest input in the batch (at most max_len).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from genpas.augment.distribution import PairDistribution
from genpas.augment.packed import WindowDistribution
from genpas.augment.sampler import ClassicEpochs, EpochSampler, shard_range
from genpas.augment.strategy import Strategy
from genpas.augment.transforms import apply_transforms, parse_transforms
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError

MODES = ("pairs", "packed")


def effective_start(k: np.ndarray, j: np.ndarray, max_len: int | None) -> np.ndarray:
    """e = max(j, k - L): the first input item the model actually sees."""
    return j if max_len is None else np.maximum(j, k - max_len)


def pair_batch(store: SequenceStore, u, k, j, max_len: int | None) -> dict[str, np.ndarray]:
    """Pairs mode: input s_e .. s_{k-1} (left-aligned), one target s_k at the last input position."""
    e = effective_start(k, j, max_len)
    length = k - e
    width = int(length.max())
    inputs = _gather_rows(store.items, store.offsets[u] + e - 1, length, width)  # from the flat index of s_e
    rows = np.arange(len(u))
    targets = np.full((len(u), width), -1, dtype=np.int64)
    targets[rows, length - 1] = store.items[store.offsets[u] + k - 1]
    weights = np.zeros((len(u), width), dtype=np.float32)
    weights[rows, length - 1] = 1.0
    return {"inputs": inputs, "targets": targets, "weights": weights}


def window_batch(store: SequenceStore, windows: WindowDistribution, u, e) -> dict[str, np.ndarray]:
    """Packed mode: input s_e .. s_{e+W-1}, target s_{e+t} at position t - 1 with weight w_t."""
    n = store.lengths[u]
    length = np.minimum(windows.max_len, n - e)  # the last input item needs a target after it
    width = int(length.max())
    base = store.offsets[u] + e - 1
    inputs = _gather_rows(store.items, base, length, width)
    targets = _gather_rows(store.items, base + 1, length, width) - 1  # the item after each input position
    weights = windows.weights(u, e)[:, :width].astype(np.float32)
    targets = np.where(weights > 0, targets, -1)
    return {"inputs": inputs, "targets": targets, "weights": weights}


@dataclass
class StreamConfig:
    mode: str = "packed"
    max_len: int = 50
    batch_size: int = 256
    seed: int = 0
    num_pairs: int | None = None  # pairs per epoch (default: the Multi-Target count)
    fixed_budget: bool = False  # draw the pairs once and reuse them every epoch
    budget_pairs: int | None = None  # a fixed set of this many pairs; epochs cycle through it (data efficiency)
    classic: bool = False  # exact presets only: every pair once per epoch, shuffled (pairs mode)
    transforms: tuple = ()  # classic input transforms (pairs mode), e.g. (Transform("crop", 0.6),)


class TrainingStream(IterableDataset):
    """An epoch of training batches from the GenPAS sampler, sharded by (rank, data-loader worker).

    Use with `DataLoader(stream, batch_size=None, num_workers=...)` and call `set_epoch(e)` before each epoch.
    With several ranks every rank gets an equal share (the epoch is cut to a multiple of the world size, at most
    world - 1 draws fewer), so all ranks take the same number of steps, as DistributedDataParallel requires.
    """

    def __init__(self, store: SequenceStore, strategy: Strategy, config: StreamConfig, rank: int = 0, world_size: int = 1):
        if config.mode not in MODES:
            raise GenpasError(f"unknown mode {config.mode!r}; choose one of {', '.join(MODES)}")
        self.store = store
        self.config = config
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self.dist = PairDistribution(store.lengths, strategy)
        self.transforms = parse_transforms(config.transforms)
        if self.transforms and config.mode != "pairs":
            raise GenpasError("input transforms need --mode pairs (a packed window serves many targets at once)")
        self.popularity_cdf = np.cumsum(np.bincount(store.items, minlength=store.num_items)) if self.transforms else None
        if config.classic:
            if strategy.name not in ("lt", "mt", "sw") or config.mode != "pairs":
                raise GenpasError("classic epochs need an exact preset (lt, mt, sw) and --mode pairs")
            self.sampler = ClassicEpochs(store.lengths, strategy.name, config.seed)
        elif config.mode == "packed":
            self.windows = WindowDistribution(self.dist, config.max_len)
            def windows_for(pairs):  # a count of pairs becomes a count of windows with as many targets
                return None if pairs is None else max(1, int(round(pairs / self.windows.mean_targets)))

            self.sampler = EpochSampler(self.windows, config.seed, windows_for(config.num_pairs), config.fixed_budget,
                                        windows_for(config.budget_pairs))
        else:
            self.sampler = EpochSampler(self.dist, config.seed, config.num_pairs, config.fixed_budget,
                                        config.budget_pairs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def draws_per_epoch(self) -> int:
        """Draws (pairs or windows) this rank takes per epoch."""
        return self.sampler.size // self.world_size

    def __len__(self) -> int:
        """Batches per epoch on this rank (exact with one data-loader worker)."""
        return math.ceil(self.draws_per_epoch / self.config.batch_size)

    def shard_bounds(self) -> tuple[int, int]:
        """[start, end) of this (rank, worker) inside the epoch's draws."""
        total = self.draws_per_epoch * self.world_size
        start, end = shard_range(total, self.rank, self.world_size)
        info = get_worker_info()
        if info is not None and info.num_workers > 1:
            lo, hi = shard_range(end - start, info.id, info.num_workers)
            start, end = start + lo, start + hi
        return start, end

    def make_batch(self, drawn: tuple, position: int = 0) -> dict[str, np.ndarray]:
        """The padded batch of `drawn`; `position` (its first draw's index in the epoch) seeds the transforms."""
        if self.config.mode == "packed" and not self.config.classic:
            return window_batch(self.store, self.windows, *drawn)
        batch = pair_batch(self.store, *drawn, self.config.max_len)
        if self.transforms:
            rng = np.random.default_rng([self.config.seed, self.epoch, position, 0x7A])
            batch = apply_transforms(batch, self.transforms, rng, self.popularity_cdf, self.config.max_len)
        return batch

    def __iter__(self):
        start, end = self.shard_bounds()
        pending: list[tuple] = []
        held = 0
        position = start
        bs = self.config.batch_size
        for chunk in self.sampler.chunks_in_range(self.epoch, start, end):
            pending.append(chunk)
            held += len(chunk[0])
            while held >= bs:
                arrays = tuple(np.concatenate(x) for x in zip(*pending))
                yield _to_torch(self.make_batch(tuple(a[:bs] for a in arrays), position))
                position += bs
                rest = tuple(a[bs:] for a in arrays)
                pending, held = ([rest], len(rest[0])) if len(rest[0]) else ([], 0)
        if held:
            arrays = tuple(np.concatenate(x) for x in zip(*pending))
            yield _to_torch(self.make_batch(arrays, position))


def _gather_rows(items: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """[B, width] of items[start : start + length] + 1 per row, left-aligned, 0 after each row's length."""
    cols = np.arange(width)
    idx = starts[:, None] + cols[None, :]
    np.minimum(idx, len(items) - 1, out=idx)  # positions past a row's length are masked below
    out = items[idx].astype(np.int64)
    out += 1
    out[cols[None, :] >= lengths[:, None]] = 0
    return out


def _to_torch(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in batch.items()}
