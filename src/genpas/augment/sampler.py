"""Epochs of training pairs: i.i.d. draws from a PairDistribution, or the classic enumerate-and-shuffle epoch.

Reproducibility and sharding (spec section 5). The N pairs of an epoch are cut into fixed blocks of BLOCK pairs;
block b is drawn from its own stream seeded by (seed, epoch, b). A shard (rank x data-loader worker) takes a
contiguous range of the epoch's N positions (sizes differ by at most one), drawing only the blocks it overlaps. So
- the same seed and epoch give the same pairs whatever the number of ranks and workers,
- the shards' shares add up to the epoch exactly, with no overlap, and together follow the same distribution,
- a resumed run redraws exactly the pairs of the epoch it resumes.

Classic epochs (the exact presets LT, MT, SW only): every pair exactly once, in an order given by a seeded
pseudo-random permutation of the pair indices (a Feistel network with cycle walking, O(1) memory, so Slide-Window's
n^2 pairs per user are never materialised), sharded as a partition of that order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from genpas.augment.distribution import PairDistribution
from genpas.errors import GenpasError

BLOCK = 8192
Triples = tuple[np.ndarray, np.ndarray, np.ndarray]


def shard_range(total: int, shard: int, num_shards: int) -> tuple[int, int]:
    """The contiguous [start, end) of `total` positions that shard `shard` of `num_shards` owns."""
    if not 0 <= shard < num_shards:
        raise GenpasError(f"shard {shard} is outside 0..{num_shards - 1}")
    base, extra = divmod(total, num_shards)
    start = shard * base + min(shard, extra)
    return start, start + base + (1 if shard < extra else 0)


class EpochSampler:
    """Seeded, sharded epochs of i.i.d. draws from `source` (a PairDistribution, or a WindowDistribution in packed mode).

    size: draws per epoch (default: `source.default_epoch_size`, for pairs the number of Multi-Target pairs).
    fixed_budget: draw the `size` draws once (epoch 0's draw) and reuse them, reshuffled, every epoch.
    budget: draw a fixed set of `budget` draws once (the first `budget` draws of epoch 0); every epoch of `size` draws
    then cycles through that set, each cycle a fresh seeded permutation. This is the data-efficiency setting ("train
    on 1% of the pairs") at equal compute: the epochs keep their size, only the number of distinct draws shrinks.
    fixed_set: cycle the same way through these given draws (arrays of equal length) instead of drawing a set; packed
    training passes the windows of a triple budget here (see TripleWindows).
    """

    def __init__(self, source, seed: int = 0, size: int | None = None, fixed_budget: bool = False,
                 budget: int | None = None, fixed_set: tuple | None = None):
        self.source = source
        self.seed = int(seed)
        self.size = int(source.default_epoch_size if size is None else size)
        if self.size < 1:
            raise GenpasError(f"the epoch needs at least 1 pair, got {self.size}")
        if budget is not None and (int(budget) < 1 or fixed_budget):
            raise GenpasError("a pair budget needs at least 1 pair, and excludes --fixed-budget")
        self.fixed_budget = fixed_budget
        self.budget = None if budget is None else int(budget)
        self._fixed_set = None if fixed_set is None else tuple(np.asarray(x) for x in fixed_set)
        if self._fixed_set is not None:
            self.budget = len(self._fixed_set[0])
            if self.budget < 1 or fixed_budget:
                raise GenpasError("a fixed set needs at least 1 draw, and excludes --fixed-budget")

    def budget_draws(self) -> tuple:
        """The fixed set of a budget: the first `budget` draws of epoch 0 (drawn once, then kept)."""
        if self._fixed_set is None:
            blocks = [self._block(0, b, self.budget) for b in range(-(-self.budget // BLOCK))]
            self._fixed_set = tuple(np.concatenate(x) for x in zip(*blocks))
        return self._fixed_set

    @property
    def num_pairs(self) -> int:
        return self.size

    def _block(self, epoch: int, block: int, total: int | None = None):
        # Always draw a whole block, then cut: draw i of an epoch depends on (seed, epoch, i) only, never on the
        # epoch's size, so a shorter epoch (e.g. cut to a multiple of the world size) is a prefix of a longer one.
        drawn = self.source.sample(BLOCK, np.random.default_rng([self.seed, epoch, block]))
        size = min(BLOCK, (self.size if total is None else total) - block * BLOCK)
        return tuple(x[:size] for x in drawn)

    def _budget_chunks(self, epoch: int, start: int, end: int) -> Iterator[tuple]:
        fixed = self.budget_draws()
        position = np.arange(start, end, dtype=np.int64)
        cycle = position // self.budget
        index = np.empty(len(position), dtype=np.int64)
        for c in np.unique(cycle):
            order = np.random.default_rng([self.seed, epoch, int(c), 2]).permutation(self.budget)
            chosen = cycle == c
            index[chosen] = order[position[chosen] - c * self.budget]
        for lo in range(0, len(index), BLOCK):
            yield tuple(x[index[lo: lo + BLOCK]] for x in fixed)

    def chunks_in_range(self, epoch: int, start: int, end: int) -> Iterator[tuple]:
        """Draws start..end-1 of the epoch, in chunks of at most BLOCK."""
        if self.budget is not None:
            yield from self._budget_chunks(epoch, start, end)
            return
        draw_epoch = 0 if self.fixed_budget else epoch
        parts = []
        for block in range(start // BLOCK, -(-end // BLOCK)):
            lo = max(start - block * BLOCK, 0)
            hi = min(end - block * BLOCK, BLOCK)
            drawn = tuple(x[lo:hi] for x in self._block(draw_epoch, block))
            if self.fixed_budget:
                parts.append(drawn)
            else:
                yield drawn
        if self.fixed_budget and parts:
            arrays = tuple(np.concatenate(x) for x in zip(*parts))
            order = np.random.default_rng([self.seed, epoch, start, end, 1]).permutation(len(arrays[0]))
            for lo in range(0, len(order), BLOCK):
                yield tuple(x[order[lo : lo + BLOCK]] for x in arrays)

    def chunks(self, epoch: int, shard: int = 0, num_shards: int = 1) -> Iterator[tuple]:
        """This shard's share of the epoch."""
        return self.chunks_in_range(epoch, *shard_range(self.size, shard, num_shards))

    def epoch(self, epoch: int, shard: int = 0, num_shards: int = 1) -> tuple:
        """The whole share as arrays (convenience for tests and the `pairs` command)."""
        width = (len(self._fixed_set) if self._fixed_set is not None
                 else 3 if isinstance(self.source, PairDistribution) else 2)
        return _concat(self.chunks(epoch, shard, num_shards), width)


def _concat(chunks, width: int) -> tuple:
    parts = list(chunks)
    if not parts:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(width))
    return tuple(np.concatenate(x) for x in zip(*parts))


# --------------------------------------------------------------------------------------------------------------------
# Classic epochs: every pair once, shuffled


def _mix(x: np.ndarray, key: np.uint64) -> np.ndarray:
    """A 64-bit mixing function (splitmix64 finaliser) used as the Feistel round function."""
    with np.errstate(over="ignore"):
        z = x * np.uint64(0x9E3779B97F4A7C15) + key
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class FeistelPermutation:
    """A seeded bijection of [0, size), evaluated pointwise in O(1) memory (cycle walking over a 2^(2h) domain)."""

    ROUNDS = 4

    def __init__(self, size: int, seed: tuple[int, ...]):
        self.size = int(size)
        self.half_bits = max(1, math.ceil(math.log2(max(self.size, 2)) / 2))
        self.mask = np.uint64((1 << self.half_bits) - 1)
        keys = np.random.default_rng([*seed, 0xFE15]).integers(0, 2**63, size=self.ROUNDS, dtype=np.uint64)
        self.keys = [np.uint64(k) for k in keys]

    def _once(self, x: np.ndarray) -> np.ndarray:
        h = np.uint64(self.half_bits)
        left, right = x >> h, x & self.mask
        for key in self.keys:
            left, right = right, left ^ (_mix(right, key) & self.mask)
        return (left << h) | right

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        x = self._once(np.asarray(positions, dtype=np.uint64))
        out = x >= self.size
        while out.any():  # cycle walking: a bijection of the big domain restricted to [0, size) stays a bijection
            x[out] = self._once(x[out])
            out = x >= self.size
        return x.astype(np.int64)


class ClassicEpochs:
    """Every pair of an exact preset (lt, mt, sw) once per epoch, in a seeded shuffled order, sharded as a partition."""

    def __init__(self, lengths: np.ndarray, preset: str, seed: int = 0):
        if preset not in ("lt", "mt", "sw"):
            raise GenpasError(f"classic epochs exist for the exact presets lt, mt and sw, not {preset!r}")
        self.preset = preset
        self.seed = int(seed)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        m = np.maximum(self.lengths - 1, 0)
        per_user = {"lt": (m > 0).astype(np.int64), "mt": m, "sw": m * (m + 1) // 2}[preset]
        self.ends = np.cumsum(per_user)
        self.num_pairs = int(self.ends[-1]) if len(self.ends) else 0
        if self.num_pairs == 0:
            raise GenpasError("no sequence has the 2 items a training pair needs")

    def triples_at(self, index: np.ndarray) -> Triples:
        """The pair with canonical (u, k, j)-ordered index `index`."""
        index = np.asarray(index, dtype=np.int64)
        u = np.searchsorted(self.ends, index, side="right")
        n = self.lengths[u]
        r = index - (self.ends[u] - {"lt": 1, "mt": n - 1, "sw": (n - 1) * n // 2}[self.preset])
        if self.preset == "lt":
            return u, n.copy(), np.ones_like(n)
        if self.preset == "mt":
            return u, r + 2, np.ones_like(n)
        # sw: target k has k-1 windows; m = k-1 solves m(m-1)/2 <= r < m(m+1)/2
        m = np.floor((1 + np.sqrt(1 + 8 * r.astype(np.float64))) / 2).astype(np.int64)
        m -= (m * (m - 1) // 2 > r).astype(np.int64)
        m += (m * (m + 1) // 2 <= r).astype(np.int64)
        return u, m + 1, r - m * (m - 1) // 2 + 1

    @property
    def size(self) -> int:
        return self.num_pairs

    def chunks_in_range(self, epoch: int, start: int, end: int) -> Iterator[Triples]:
        perm = FeistelPermutation(self.num_pairs, (self.seed, epoch))
        for lo in range(start, end, BLOCK):
            yield self.triples_at(perm(np.arange(lo, min(lo + BLOCK, end), dtype=np.uint64)))

    def chunks(self, epoch: int, shard: int = 0, num_shards: int = 1) -> Iterator[Triples]:
        return self.chunks_in_range(epoch, *shard_range(self.num_pairs, shard, num_shards))

    def epoch(self, epoch: int, shard: int = 0, num_shards: int = 1) -> Triples:
        return _concat(self.chunks(epoch, shard, num_shards), 3)
