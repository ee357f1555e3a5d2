"""Packed training (spec section 5b): any (alpha, beta, gamma) at about the cost of Multi-Target.

A model with maximum input length L sees triple (u, k, j) as the input s_e .. s_{k-1} with effective start
e = max(j, k - L). One causal pass over the window s_e .. s_{e+L-1} (cut at the sequence end) predicts every target
k = e+1 .. e+L from exactly that input, because positions count from the input's first item. So we draw windows
(u, e) with probability

    q(u, e) = sum of p(u, k, j) over triples whose effective start is e,

and weight the loss at target k = e + t by w_t = P(k | u, e). For t < L only j = e maps to e; for t = L every
j <= e does (those inputs are cut to the last L items). Hence, with P the pair distribution,

    mass(u, e, t) = p(k | u) * p(j = e | k)      if t < L
                  = p(k | u) * P(j <= e | k)     if t = L
    q(u, e) = p(u) * sum_t mass(u, e, t),        w_t = mass(u, e, t) / sum_t mass(u, e, t).

The expected weighted loss of a window drawn from q equals the expected loss of a pair drawn from p.
Windows live on the flat positions of the training store: slot offsets[u] + e - 1 for e = 1 .. n_u - 1.

A data budget (a fixed set of B sampled triples, for data-efficiency runs) is packed the same way, with the
empirical distribution of the set in place of p: `TripleWindows` groups the triples by effective start and weights
each target by its count, so packed and pairs runs of the same budget train on exactly the same triples.
"""

from __future__ import annotations

import numpy as np

from genpas.augment.distribution import PairDistribution
from genpas.augment.inverse_cdf import GuideTable


def effective_start(k: np.ndarray, j: np.ndarray, max_len: int | None) -> np.ndarray:
    """e = max(j, k - L): the first input item the model actually sees."""
    return j if max_len is None else np.maximum(j, k - max_len)


def mt_window_count(lengths: np.ndarray, max_len: int) -> int:
    """N_MT / T_MT: the Multi-Target pair count over the mean number of targets of a Multi-Target window.

    Multi-Target draws (u, k) uniformly over its N_MT pairs. A user's k <= L + 1 share the window e = 1
    (min(n - 1, L) targets); every later k has a window of its own (one target). Hence
    T_MT = sum_u (min(n_u - 1, L)^2 + max(n_u - 1 - L, 0)) / N_MT.
    """
    m = np.maximum(np.asarray(lengths, dtype=np.int64) - 1, 0)
    pairs = int(m.sum())
    first = np.minimum(m, max_len).astype(np.float64)
    targets_sum = float((first**2).sum() + np.maximum(m - max_len, 0).sum())
    return max(1, int(round(pairs * pairs / targets_sum))) if pairs else 1


class WindowDistribution:
    """q(u, e) over windows and the per-window target weights, for a pair distribution and a maximum length L."""

    def __init__(self, dist: PairDistribution, max_len: int):
        if max_len < 1:
            raise ValueError("max_len must be >= 1")
        self.dist = dist
        self.max_len = int(max_len)
        n = dist.lengths
        self.offsets = np.concatenate([[0], np.cumsum(n)])
        users = np.repeat(np.arange(len(n), dtype=np.int64), n)
        starts = np.arange(len(users), dtype=np.int64) - self.offsets[users] + 1  # e, 1-based
        total = np.zeros(len(users))
        count = np.zeros(len(users))
        n_of = n[users]
        # One vectorised pass per target offset t: linear in the interactions, times L at most.
        for t in range(1, min(self.max_len, int(n.max()) - 1) + 1):
            live = np.flatnonzero(starts + t <= n_of)
            if len(live) == 0:
                break
            mass = self._mass(n_of[live], starts[live], t)
            total[live] += mass
            count[live] += mass > 0
        self.q = dist.user_prob[users] * total
        self.q /= self.q.sum()
        self.cdf = np.cumsum(self.q)  # sampled as r * cdf[-1]: zero-mass windows (e = n_u, ...) are never drawn
        self._last_slot = int(np.flatnonzero(self.q > 0)[-1])
        self._guide: GuideTable | None = None
        self.users = users
        self.starts = starts
        #: expected number of targets with positive weight in a window drawn from q
        self.mean_targets = float((self.q * count).sum())

    def _mass(self, n: np.ndarray, e: np.ndarray, t: int) -> np.ndarray:
        k = e + t
        p_input = self.dist.input_prob(e, k) if t < self.max_len else self.dist.input_cdf(e, k)
        return self.dist.target_prob(n, k) * p_input

    @property
    def default_epoch_size(self) -> int:
        """Windows per epoch: the same for every strategy (equal optimizer steps, docs/method.md "Epochs"), namely as
        many as Multi-Target needs to see each of its pairs once in expectation."""
        return mt_window_count(self.dist.lengths, self.max_len)

    def sample(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`size` i.i.d. windows (u, e) from q."""
        if self._guide is None:
            self._guide = GuideTable(self.cdf)
        slot = np.minimum(self._guide(rng.random(size) * self.cdf[-1]), self._last_slot)
        return self.users[slot], self.starts[slot]

    def weights(self, u: np.ndarray, e: np.ndarray) -> np.ndarray:
        """[B, L] target weights w_t (column t-1 for target k = e + t); each row sums to 1."""
        n = self.dist.lengths[u]
        out = np.zeros((len(u), self.max_len))
        for t in range(1, self.max_len + 1):
            live = e + t <= n
            if not live.any():
                break
            out[live, t - 1] = self._mass(n[live], e[live], t)
        return out / out.sum(axis=1, keepdims=True)


class TripleWindows:
    """A fixed multiset of triples (u, k, j), packed: one window per distinct (u, e), each target weighted by how
    many of the triples it stands for.

    Window w holds the targets t = k - e of its triples with weight count(u, e, k) * W / B (W windows, B triples), so
    one pass over the W windows gives the loss of the B triples one by one (divided by the W rows, the trainer's
    normalisation: (1/B) * sum over the triples of their cross-entropy). Stored sparsely (CSR by window): memory is
    linear in the number of distinct (window, target) entries, never W x L.
    """

    def __init__(self, lengths: np.ndarray, max_len: int, u: np.ndarray, k: np.ndarray, j: np.ndarray):
        if len(u) == 0:
            raise ValueError("a triple budget needs at least one triple")
        self.max_len = int(max_len)
        lengths = np.asarray(lengths, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        e = effective_start(k, j, self.max_len)
        key = (offsets[u] + e - 1) * self.max_len + (k - e - 1)  # (window slot, target column)
        entries, counts = np.unique(key, return_counts=True)
        slots, first = np.unique(entries // self.max_len, return_index=True)
        self.ptr = np.append(first, len(entries)).astype(np.int64)
        self.cols = (entries % self.max_len).astype(np.int64)
        self.values = counts.astype(np.float64) * (len(slots) / len(u))
        self.users = (np.searchsorted(offsets, slots, side="right") - 1).astype(np.int64)
        self.starts = slots - offsets[self.users] + 1
        self.num_triples = int(len(u))

    def __len__(self) -> int:
        return len(self.users)

    def weights(self, index: np.ndarray) -> np.ndarray:
        """[B, L] target weights of windows `index` (column t - 1 for target k = e + t)."""
        index = np.asarray(index, dtype=np.int64)
        sizes = self.ptr[index + 1] - self.ptr[index]
        rows = np.repeat(np.arange(len(index)), sizes)
        entry = np.repeat(self.ptr[index] - np.cumsum(sizes) + sizes, sizes) + np.arange(sizes.sum())
        out = np.zeros((len(index), self.max_len))
        out[rows, self.cols[entry]] = self.values[entry]
        return out
