"""An epoch of GenPAS draws computed per user range: the same draws however the users are partitioned.

The in-process sampler draws N i.i.d. triples from one stream. An engine that spreads users over partitions needs a
draw that each partition computes alone, yet that does not depend on the partitioning. Two facts give it:

1. Counts. The number of draws of each user, (c_u) ~ Multinomial(N, p(u)), is generated top-down on a fixed binary
   tree over the user codes: a node [a, b) holding n draws gives its left half Binomial(n, P[a, mid) / P[a, b)),
   with a generator seeded by (seed, epoch, a, b); nodes of at most LEAF users split their n by one multinomial.
   This is exactly a multinomial (conditional binomials), and a partition [lo, hi) only walks the nodes that overlap
   it: O(hi - lo + log U) work, identical counts whatever the partition boundaries.
2. Draws. Draw t of user u takes its uniforms from a counter-based stream keyed by (seed, epoch, u, t) (a
   splitmix64 hash), then k and j by the same inverse CDFs as PairDistribution.sample. So (k, j) of a user depend on
   nothing but the seed, the epoch and the user.

The sampling math stays PairDistribution's; this module only decides which uniforms and counts it is fed.
"""

from __future__ import annotations

import math

import numpy as np

from genpas.augment.distribution import PairDistribution
from genpas.augment.sampler import _mix

LEAF = 64
_TAG_TREE, _TAG_K, _TAG_J = 0x7E1, 0x6B1, 0x6A1


class PartitionedEpoch:
    """`size` draws of epoch `epoch` from `dist`, per user range (see the module docstring)."""

    def __init__(self, dist: PairDistribution, size: int | None = None, seed: int = 0, epoch: int = 0):
        self.dist = dist
        self.size = int(dist.default_epoch_size if size is None else size)
        self.seed, self.epoch = int(seed), int(epoch)
        self.weights = np.concatenate([[0.0], np.cumsum(dist.user_weights)])  # W[b] - W[a] = weight of [a, b)

    # ---- 1. counts
    def counts(self, lo: int, hi: int) -> np.ndarray:
        """c_u for the users lo .. hi-1 (int64)."""
        out = np.zeros(hi - lo, dtype=np.int64)
        self._split(0, self.dist.num_users, self.size, lo, hi, out)
        return out

    def _mass(self, a: int, b: int) -> float:
        return float(self.weights[b] - self.weights[a])

    def _split(self, a: int, b: int, n: int, lo: int, hi: int, out: np.ndarray) -> None:
        if n == 0 or b <= lo or a >= hi:
            return
        rng = np.random.default_rng([self.seed, self.epoch, a, b, _TAG_TREE])
        if b - a <= LEAF:
            w = self.dist.user_weights[a:b]
            counts = rng.multinomial(n, w / w.sum())
            s, e = max(a, lo), min(b, hi)
            out[s - lo : e - lo] = counts[s - a : e - a]
            return
        mid = (a + b) // 2
        total = self._mass(a, b)
        left = int(rng.binomial(n, min(max(self._mass(a, mid) / total, 0.0), 1.0))) if total > 0 else 0
        self._split(a, mid, left, lo, hi, out)
        self._split(mid, b, n - left, lo, hi, out)

    # ---- 2. draws
    def draws(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, k, j) for the users lo .. hi-1, by user, then by draw number t (int64 arrays)."""
        c = self.counts(lo, hi)
        u = np.repeat(np.arange(lo, hi, dtype=np.int64), c)
        t = np.arange(len(u), dtype=np.int64) - np.repeat(np.cumsum(c) - c, c)
        n = self.dist.lengths[u]
        s = self.dist.strategy
        k = 1 + self.dist._draw_power(s.beta, self.dist.Cb, self.uniform(u, t, _TAG_K), n - 1)
        if s.gamma == math.inf:
            j = k - 1
        elif s.gamma == -math.inf:
            j = np.ones_like(k)
        else:
            j = self.dist._draw_power(s.gamma, self.dist.Cg, self.uniform(u, t, _TAG_J), k - 1)
        return u, k.astype(np.int64), j.astype(np.int64)

    def uniform(self, u: np.ndarray, t: np.ndarray, tag: int) -> np.ndarray:
        """Uniforms in [0, 1) from the stream of (seed, epoch, u) at positions t: 53 bits of a splitmix64 hash."""
        with np.errstate(over="ignore"):
            key = _mix(np.array([self.seed, self.epoch, tag], dtype=np.uint64), np.uint64(0x5EED))
            h = _mix(u.astype(np.uint64) ^ key[0], key[1])
            h = _mix(h + t.astype(np.uint64), key[2])
        return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def partition_count(partitions: int | None, interactions: int) -> int:
    """The number of user ranges: as asked, else one per 2M events (at most 4096)."""
    if partitions is None:
        return max(1, min(4096, -(-int(interactions) // 2_000_000)))
    if partitions < 1:
        from genpas.errors import GenpasError

        raise GenpasError(f"--partitions must be at least 1, got {partitions}")
    return int(partitions)


def user_ranges(lengths: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split users into `parts` contiguous ranges of about equal total length (the work of a range)."""
    cum = np.concatenate([[0], np.cumsum(np.maximum(np.asarray(lengths, dtype=np.int64), 1))])
    cuts = np.searchsorted(cum, np.linspace(0, cum[-1], parts + 1)[1:-1])
    edges = np.unique(np.concatenate([[0], cuts, [len(lengths)]]))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
