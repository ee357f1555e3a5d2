"""The pair distribution p(u, k, j) of a strategy over a set of sequences, in closed form.

Everything reduces to three small objects, built in time linear in the number of users plus the longest sequence:

    user_cdf   cumulative user weights (sampling u by inverse CDF)
    Cb[m]      sum_{i=1..m} i^beta   so that p(k | u) = (k-1)^beta / Cb[n_u - 1]
    Cg[m]      sum_{i=1..m} i^gamma  so that p(j | k) = j^gamma / Cg[k - 1]

The two power-sum tables depend on the exponent only, not on the user, which is what makes every step an O(log n)
inverse-CDF lookup into a global table, and the exact target distribution (analysis) a single linear pass. The
limits +-inf are handled as point masses. Positions k and j are 1-based, as in the spec.
"""

from __future__ import annotations

import math

import numpy as np

from genpas.augment.inverse_cdf import GuideTable, power_cdf_inverse, uniform_index
from genpas.augment.strategy import Strategy


def power_table(exponent: float, size: int) -> np.ndarray:
    """w[m] = m^exponent for m = 1..size, with w[0] = 0 (float64). -inf/+inf are handled by the callers."""
    w = np.zeros(size + 1, dtype=np.float64)
    m = np.arange(1, size + 1, dtype=np.float64)
    w[1:] = 1.0 if exponent == 0 else m**exponent
    return w


class PairDistribution:
    """p(u, k, j) of `strategy` over sequences of the given lengths (users with n < 2 get no pairs)."""

    def __init__(self, lengths: np.ndarray, strategy: Strategy):
        self.strategy = strategy
        self.lengths = np.asarray(lengths, dtype=np.int64)
        n = self.lengths
        eligible = n >= 2
        if not eligible.any():
            from genpas.errors import GenpasError

            raise GenpasError("no sequence has the 2 items a training pair needs")
        pairs_per_user = np.maximum(n - 1, 0).astype(np.float64)
        if strategy.user_weight == "windows":
            weights = pairs_per_user * (pairs_per_user + 1) / 2.0
        else:
            weights = np.zeros(len(n))
            weights[eligible] = pairs_per_user[eligible] ** strategy.alpha
        self.user_weights = np.where(eligible, weights, 0.0)
        self.user_prob = self.user_weights / self.user_weights.sum()
        self.user_cdf = np.cumsum(self.user_prob)  # sampled as r * user_cdf[-1], so zero-weight users are never drawn
        self._last_user = int(np.flatnonzero(self.user_prob > 0)[-1])  # guards the rounding of r * cdf[-1]
        self._user_guide: GuideTable | None = None  # built on the first draw (analysis never needs it)
        m = int(n.max())
        self.max_length = m
        self.b = power_table(strategy.beta, m) if math.isfinite(strategy.beta) else None
        self.Cb = np.cumsum(self.b) if self.b is not None else None
        if math.isfinite(strategy.gamma):
            self.g = power_table(strategy.gamma, m)
        elif strategy.gamma < 0:  # -inf: all mass on j = 1, which the tables express exactly
            self.g = np.zeros(m + 1)
            self.g[1:2] = 1.0
        else:
            self.g = None  # +inf: j = k - 1, not a product form; handled as a point mass
        self.Cg = np.cumsum(self.g) if self.g is not None else None

    # ---- sizes
    @property
    def num_users(self) -> int:
        return len(self.lengths)

    @property
    def default_epoch_size(self) -> int:
        """Pairs per epoch: the Multi-Target count, for every strategy, so that an epoch is the same number of
        optimizer steps whatever the strategy (docs/method.md "Epochs"). Last-Target, with one pair per user, then
        sees each of its pairs about N_MT / users times per epoch."""
        return self.num_mt_pairs

    @property
    def support_size(self) -> int:
        """Number of triples with positive probability (exact count, no enumeration)."""
        n = self.lengths[self.user_prob > 0]
        s = self.strategy
        if math.isinf(s.beta):
            k = n if s.beta > 0 else np.full_like(n, 2)
            return int((np.ones_like(k) if math.isinf(s.gamma) else k - 1).sum())
        if math.isinf(s.gamma):
            return int((n - 1).sum())
        return int((n * (n - 1) // 2).sum())

    @property
    def num_mt_pairs(self) -> int:
        """Sum over users of n_u - 1: the default number of pairs per epoch."""
        return int(np.maximum(self.lengths - 1, 0).sum())

    # ---- the three conditionals, elementwise over arrays (k, j 1-based)
    def target_prob(self, n: np.ndarray, k: np.ndarray) -> np.ndarray:
        """p(k | u) for users of length n; zero outside 2 <= k <= n."""
        n = np.asarray(n, dtype=np.int64)
        k = np.asarray(k, dtype=np.int64)
        valid = (k >= 2) & (k <= n) & (n >= 2)
        beta = self.strategy.beta
        if beta == math.inf:
            return (valid & (k == n)).astype(np.float64)
        if beta == -math.inf:
            return (valid & (k == 2)).astype(np.float64)
        kk = np.clip(k - 1, 0, self.max_length)
        nn = np.clip(n - 1, 1, self.max_length)
        return np.where(valid, self.b[kk] / self.Cb[nn], 0.0)

    def input_prob(self, j: np.ndarray, k: np.ndarray) -> np.ndarray:
        """p(j | k); zero outside 1 <= j <= k - 1."""
        j = np.asarray(j, dtype=np.int64)
        k = np.asarray(k, dtype=np.int64)
        valid = (j >= 1) & (j <= k - 1)
        if self.g is None:
            return (valid & (j == k - 1)).astype(np.float64)
        jj = np.clip(j, 0, self.max_length)
        kk = np.clip(k - 1, 1, self.max_length)
        return np.where(valid, self.g[jj] / self.Cg[kk], 0.0)

    def input_cdf(self, j: np.ndarray, k: np.ndarray) -> np.ndarray:
        """P(J <= j | k) = sum_{i <= j} p(i | k)."""
        j = np.asarray(j, dtype=np.int64)
        k = np.asarray(k, dtype=np.int64)
        jc = np.clip(j, 0, np.maximum(k - 1, 0))
        if self.g is None:
            return ((jc >= k - 1) & (k >= 2)).astype(np.float64)
        kk = np.clip(k - 1, 1, self.max_length)
        return np.where(k >= 2, self.Cg[np.clip(jc, 0, self.max_length)] / self.Cg[kk], 0.0)

    def prob(self, u: np.ndarray, k: np.ndarray, j: np.ndarray) -> np.ndarray:
        """p(u, k, j) for arrays of triples."""
        n = self.lengths[np.asarray(u)]
        return self.user_prob[np.asarray(u)] * self.target_prob(n, k) * self.input_prob(j, k)

    # ---- sampling by inverse CDFs
    def sample(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`size` i.i.d. triples (u, k, j) as int64 arrays: expected O(1) work per draw, no per-pair Python."""
        r = rng.random((3, size))
        if self._user_guide is None:
            self._user_guide = GuideTable(self.user_cdf)
        u = np.minimum(self._user_guide(r[0] * self.user_cdf[-1]), self._last_user)
        n = self.lengths[u]
        k = 1 + self._draw_power(self.strategy.beta, self.Cb, r[1], n - 1)  # k - 1 ~ (k-1)^beta on 1..n-1
        gamma = self.strategy.gamma
        if gamma == math.inf:
            j = k - 1
        else:  # -inf is the table with all mass on 1, but a constant is cheaper
            j = np.ones_like(k) if gamma == -math.inf else self._draw_power(gamma, self.Cg, r[2], k - 1)
        return u.astype(np.int64), k.astype(np.int64), j.astype(np.int64)

    @staticmethod
    def _draw_power(exponent: float, C: np.ndarray | None, r: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """m in 1..upper with probability m^exponent / C[upper] (point masses for +-inf)."""
        if exponent == math.inf:
            return upper.copy()
        if exponent == -math.inf:
            return np.ones_like(upper)
        if exponent == 0:
            return 1 + uniform_index(r, upper)
        return power_cdf_inverse(C, exponent, r * C[upper], upper)

    # ---- exact enumeration (small data: tests, `genpas pairs --exact`)
    def enumerate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every triple of positive probability with its probability (float64), ordered by (u, k, j)."""
        us, ks, js, ps = [], [], [], []
        for u in np.flatnonzero(self.user_prob > 0):
            n = int(self.lengths[u])
            k, j = np.tril_indices(n - 1)  # rows k-2, cols j-1 with j <= k-1
            k = k + 2
            j = j + 1
            p = self.prob(np.full(len(k), u), k, j)
            keep = p > 0
            us.append(np.full(int(keep.sum()), u, dtype=np.int64))
            ks.append(k[keep])
            js.append(j[keep])
            ps.append(p[keep])
        return np.concatenate(us), np.concatenate(ks), np.concatenate(js), np.concatenate(ps)
