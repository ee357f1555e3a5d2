"""From sampled triples or windows to padded training batches, and the torch IterableDataset that streams them.

Every batch has the same three arrays, whatever the mode, so the trainer has one loss:

    inputs   int64 [B, W]    item code + 1, left-aligned (position 0 = the input's first item), 0 = padding
    targets  int64 [B, W]    item code predicted at each position, -1 where there is no target
    weights  float32 [B, W]  loss weight of each target; every row sums to 1 (a packed data budget: to the row's
                             count of triples over the mean count, see TripleWindows)

    times    float32 [B, W+1] (only when the stream is asked for times, e.g. for HSTU) the times of the W input items
                             and of the event after the last one, relative to the row's first; padding repeats the
                             last time

Left alignment makes the position encoding of an input independent of how it was cut (spec 5b), and is used at
evaluation too. `pairs` mode has one target per row, at the input's last position; `packed` mode has every target of
a window with its conditional probability as weight. W is the longest input in the batch (at most max_len).

Grouping by length (`group_by_length` G > 1) takes the epoch's draws G batches at a time, sorts them by input length
and cuts them into batches of similar lengths, in a seeded random order: the epoch holds the same rows with the same
weights and the same number of batches, with far less padding where inputs vary in length (ML-1M at length 200).
Each row's loss weight is one pair's worth whatever its batch (loss.py), so grouping changes which rows share a
step, not the weight a target gets in the epoch. One exception: the epoch's last batch, when partial, weighs its
fewer rows a little more in either order; grouped, its rows are the longest inputs of the last group (on ML-1M, 39
rows at 1.6x once an epoch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from genpas.augment.distribution import PairDistribution
from genpas.augment.packed import TripleWindows, WindowDistribution, effective_start, mt_window_count
from genpas.augment.sampler import ClassicEpochs, EpochSampler, shard_range
from genpas.augment.strategy import Strategy
from genpas.augment.transforms import apply_transforms, parse_transforms
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError

MODES = ("pairs", "packed")


def pair_span(k, j, max_len: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(e, input length k - e) of pairs whose input is s_e .. s_{k-1}: from s_j, cut to the last max_len items."""
    e = effective_start(k, j, max_len)
    return e, k - e


def window_lengths(store: SequenceStore, u, e, max_len: int) -> np.ndarray:
    """Input lengths of packed windows from s_e: at most max_len items, the last one followed by its target."""
    return np.minimum(max_len, store.lengths[u] - e)


def pair_batch(store: SequenceStore, u, k, j, max_len: int | None, times: bool = False) -> dict[str, np.ndarray]:
    """Pairs mode: input s_e .. s_{k-1} (left-aligned), one target s_k at the last input position."""
    e, length = pair_span(k, j, max_len)
    width = int(length.max())
    inputs = _gather_rows(store.items, store.offsets[u] + e - 1, length, width)  # from the flat index of s_e
    rows = np.arange(len(u))
    targets = np.full((len(u), width), -1, dtype=np.int64)
    targets[rows, length - 1] = store.items[store.offsets[u] + k - 1]
    weights = np.zeros((len(u), width), dtype=np.float32)
    weights[rows, length - 1] = 1.0
    batch = {"inputs": inputs, "targets": targets, "weights": weights}
    if times:
        batch["times"] = gather_times(store.times, store.offsets[u] + e - 1, length + 1, width + 1)
    return batch


def window_batch(store: SequenceStore, max_len: int, u, e, weights: np.ndarray, times: bool = False
                 ) -> dict[str, np.ndarray]:
    """Packed mode: input s_e .. s_{e+W-1}, target s_{e+t} at position t - 1 with weight weights[:, t - 1]."""
    length = window_lengths(store, u, e, max_len)
    width = int(length.max())
    base = store.offsets[u] + e - 1
    inputs = _gather_rows(store.items, base, length, width)
    targets = _gather_rows(store.items, base + 1, length, width) - 1  # the item after each input position
    weights = weights[:, :width].astype(np.float32)
    targets = np.where(weights > 0, targets, -1)
    batch = {"inputs": inputs, "targets": targets, "weights": weights}
    if times:
        batch["times"] = gather_times(store.times, base, length + 1, width + 1)
    return batch


@dataclass
class StreamConfig:
    mode: str = "packed"
    max_len: int = 50
    batch_size: int = 256
    seed: int = 0
    num_pairs: int | None = None  # pairs per epoch (default: the Multi-Target count); packed: the windows that
    #                               Multi-Target needs for as many pairs, whatever the strategy (equal steps)
    fixed_budget: bool = False  # draw the pairs once and reuse them every epoch
    budget_pairs: int | None = None  # a fixed set of this many triples; epochs cycle through it (data efficiency)
    classic: bool = False  # exact presets only: every pair once per epoch, shuffled (pairs mode)
    transforms: tuple = ()  # classic input transforms (pairs mode), e.g. (Transform("crop", 0.6),)
    times: bool = False  # add each row's event times (models with a time signal, e.g. HSTU)
    group_by_length: int = 0  # G > 1: batches cut from G batches' draws sorted by input length (0, 1: draw order)


class TrainingStream(IterableDataset):
    """An epoch of training batches from the GenPAS sampler, sharded by rank (and built by data-loader workers in turn).

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
        if self.transforms and config.times:
            raise GenpasError("input transforms do not keep event times: they cannot feed a model that reads times "
                              "(HSTU)")
        if self.transforms and config.mode != "pairs":
            raise GenpasError("input transforms need --mode pairs (a packed window serves many targets at once)")
        self.popularity_cdf = np.cumsum(np.bincount(store.items, minlength=store.num_items)) if self.transforms else None
        if config.classic:
            if strategy.name not in ("lt", "mt", "sw") or config.mode != "pairs":
                raise GenpasError("classic epochs need an exact preset (lt, mt, sw) and --mode pairs")
            self.sampler = ClassicEpochs(store.lengths, strategy.name, config.seed)
        elif config.mode == "packed":
            # Equal steps: an epoch of N pairs is N / T_MT windows for every strategy (mt_window_count).
            mt_pairs = self.dist.num_mt_pairs
            size = mt_window_count(store.lengths, config.max_len)
            if config.num_pairs is not None:
                size = max(1, int(round(size * config.num_pairs / mt_pairs)))
            budget = config.budget_pairs
            if config.fixed_budget and budget is not None:
                raise GenpasError("a pair budget excludes --fixed-budget")
            if config.fixed_budget:  # in packed mode, a fixed budget is a triple budget of the epoch's pair count
                budget = config.num_pairs or mt_pairs
            self.triple_windows = None
            if budget is not None:  # B triples, exactly those of pairs mode, packed into windows
                triples = EpochSampler(self.dist, config.seed, budget=budget).budget_draws()
                self.triple_windows = TripleWindows(store.lengths, config.max_len, *triples)
                tw = self.triple_windows
                self.sampler = EpochSampler(None, config.seed, size,
                                            fixed_set=(tw.users, tw.starts, np.arange(len(tw), dtype=np.int64)))
            else:  # the window distribution q, built only when windows are drawn from it
                self.windows = WindowDistribution(self.dist, config.max_len)
                self.sampler = EpochSampler(self.windows, config.seed, size)
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
        """Batches per epoch on this rank."""
        return math.ceil(self.draws_per_epoch / self.config.batch_size)

    def shard_bounds(self) -> tuple[int, int]:
        """[start, end) of this rank inside the epoch's draws."""
        return shard_range(self.draws_per_epoch * self.world_size, self.rank, self.world_size)

    def make_batch(self, drawn: tuple, position: int = 0) -> dict[str, np.ndarray]:
        """The padded batch of `drawn`; `position` (its first draw's index in the epoch) seeds the transforms."""
        if self.config.mode == "packed" and not self.config.classic:
            if self.triple_windows is not None:
                u, e, index = drawn
                return window_batch(self.store, self.config.max_len, u, e, self.triple_windows.weights(index),
                                    self.config.times)
            u, e = drawn
            return window_batch(self.store, self.config.max_len, u, e, self.windows.weights(u, e), self.config.times)
        batch = pair_batch(self.store, *drawn, self.config.max_len, self.config.times)
        if self.transforms:
            rng = np.random.default_rng([self.config.seed, self.epoch, position, 0x7A])
            batch = apply_transforms(batch, self.transforms, rng, self.popularity_cdf, self.config.max_len)
        return batch

    def input_lengths(self, drawn: tuple) -> np.ndarray:
        """The input length of each draw of `drawn` (its row's width before padding)."""
        if self.config.mode == "packed" and not self.config.classic:
            return window_lengths(self.store, drawn[0], drawn[1], self.config.max_len)
        return pair_span(drawn[1], drawn[2], self.config.max_len)[1]

    def __iter__(self):
        """This rank's batches in order. Data-loader workers each draw the rank's whole share (cheap) and build every
        W-th batch (the costly part); the loader takes them in turn, so any number of workers yields the batches of
        one, in the same order."""
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for index, (drawn, position) in enumerate(self.batch_draws()):
            if index % workers == worker:
                yield _to_torch(self.make_batch(drawn, position))

    def batch_draws(self):
        """(draws, position) of each of this rank's batches in order; `position` is the index of the batch's first
        draw in the epoch (grouped: of its first slot in the group), which seeds its transforms."""
        bs, groups = self.config.batch_size, max(1, self.config.group_by_length)
        for arrays, position in self._runs(groups * bs):
            if groups == 1:
                yield arrays, position
                continue
            order = np.argsort(self.input_lengths(arrays), kind="stable")
            slots = math.ceil(len(order) / bs)
            shuffled = np.random.default_rng([self.config.seed, self.epoch, position, 0x6B]).permutation(slots)
            if len(order) % bs:  # a short last group: its partial batch stays last, as in draw order
                shuffled = np.append(shuffled[shuffled != slots - 1], slots - 1)
            for slot in shuffled:
                rows = order[slot * bs:(slot + 1) * bs]
                yield tuple(a[rows] for a in arrays), position + slot * bs

    def _runs(self, size: int):
        """This rank's draws in runs of `size` (the last one shorter), with the position of each run's first."""
        start, end = self.shard_bounds()
        pending, held, position = [], 0, start
        for chunk in self.sampler.chunks_in_range(self.epoch, start, end):
            pending.append(chunk)
            held += len(chunk[0])
            while held >= size:
                arrays = tuple(np.concatenate(x) for x in zip(*pending))
                yield tuple(a[:size] for a in arrays), position
                position += size
                rest = tuple(a[size:] for a in arrays)
                pending, held = ([rest], len(rest[0])) if len(rest[0]) else ([], 0)
        if held:
            yield tuple(np.concatenate(x) for x in zip(*pending)), position


def _gather_rows(items: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """[B, width] of items[start : start + length] + 1 per row, left-aligned, 0 after each row's length."""
    cols = np.arange(width)
    idx = starts[:, None] + cols[None, :]
    np.minimum(idx, len(items) - 1, out=idx)  # positions past a row's length are masked below
    out = items[idx].astype(np.int64)
    out += 1
    out[cols[None, :] >= lengths[:, None]] = 0
    return out


def gather_times(times: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """[B, width] float32 of times[start : start + length] per row minus the row's first time; positions past a row's
    length repeat its last time. Differences stay exact in float64 until they are small enough for float32."""
    cols = np.arange(width)
    idx = starts[:, None] + np.minimum(cols[None, :], lengths[:, None] - 1)
    return (times[idx] - times[starts][:, None]).astype(np.float32)


def _to_torch(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in batch.items()}
