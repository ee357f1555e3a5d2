"""Closed-form properties of a pair distribution, without training and without enumerating pairs.

All of them are sums over the N positions (u, k) of the training store, weighted by p(u) p(k | u), of quantities
that depend on k only through small global tables; each is one vectorised O(N) pass.

    p_train(i)        = sum_u p(u) sum_k p(k | u) [s_k = i]             the training-target distribution
    KL                = KL(p_eval || (1 - eps) p_train + eps / I)       target alignment (eps: SMOOTHING)
    entropy           = H(u) + E[H(k | u)] + E[H(j | k)]                effective number of distinct pairs = e^H
    input length      = E[k - j] (untruncated) and E[min(k - j, L)]    expected input length

p_train does not depend on gamma (the input step never changes the target), so neither does KL.
"""

from __future__ import annotations

import math

import numpy as np

from genpas.augment.distribution import PairDistribution, power_table
from genpas.augment.strategy import Strategy
from genpas.data.store import SequenceStore

SMOOTHING = 1e-6  # weight of the uniform distribution mixed into p_train so that KL stays finite


class TargetAnalyzer:
    """Precomputes the per-position arrays once; then each strategy costs one pass over them."""

    def __init__(self, store: SequenceStore):
        self.store = store
        self.num_items = store.num_items
        n = store.lengths
        self.user = store.user_index()
        self.n = n[self.user]
        self.k = np.arange(store.num_interactions, dtype=np.int64) - store.offsets[self.user] + 1  # 1-based
        target = self.k >= 2
        # Only positions that can be targets matter (k >= 2); keep compact arrays of those.
        self.t_user = self.user[target]
        self.t_n = self.n[target]
        self.t_k = self.k[target]
        self.t_item = store.items[target].astype(np.int64)
        self.t_km1 = self.t_k - 1
        self.lengths = n
        self.t_counts = np.maximum(n - 1, 0)  # target positions per user (they are contiguous, in user order)

    def position_weights(self, dist: PairDistribution) -> np.ndarray:
        """p(u) p(k | u) for every target position (sums to 1)."""
        if dist.b is None:  # beta = +-inf: point masses
            return dist.user_prob[self.t_user] * dist.target_prob(self.t_n, self.t_k)
        # Finite beta: p(u) / Cb[n_u - 1] per user, times (k - 1)^beta per position: two gathers and a product.
        norm = dist.Cb[np.maximum(self.lengths - 1, 0)]
        per_user = np.divide(dist.user_prob, norm, out=np.zeros_like(dist.user_prob), where=norm > 0)
        return np.repeat(per_user, self.t_counts) * dist.b[self.t_km1]

    def target_distribution(self, strategy: Strategy, dist: PairDistribution | None = None) -> np.ndarray:
        dist = dist or PairDistribution(self.lengths, strategy)
        return np.bincount(self.t_item, weights=self.position_weights(dist), minlength=self.num_items)


def eval_distribution(targets: np.ndarray, num_items: int) -> np.ndarray:
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=num_items).astype(np.float64)
    return counts / counts.sum()


def kl_divergence(p_eval: np.ndarray, p_train: np.ndarray, smoothing: float = SMOOTHING) -> float:
    """KL(p_eval || (1 - smoothing) p_train + smoothing / I), in nats."""
    q = (1.0 - smoothing) * p_train + smoothing / len(p_train)
    support = p_eval > 0
    return float(np.sum(p_eval[support] * np.log(p_eval[support] / q[support])))


# ------------------------------------------------------------------------------------------------------------------
# Entropy and expected input length: per-k tables from prefix sums


def _conditional_entropy_table(exponent: float, size: int) -> np.ndarray:
    """h[m] = entropy of the distribution ~ i^exponent over i = 1..m (h[0] = 0), in O(size)."""
    if math.isinf(exponent):
        return np.zeros(size + 1)
    w = power_table(exponent, size)
    C = np.cumsum(w)
    logs = np.zeros(size + 1)
    logs[1:] = np.log(np.arange(1, size + 1))
    S = np.cumsum(w * logs)
    h = np.zeros(size + 1)
    h[1:] = np.log(C[1:]) - exponent * S[1:] / C[1:]
    return np.maximum(h, 0.0)


def pair_entropy(analyzer: TargetAnalyzer, dist: PairDistribution) -> float:
    """H(u, k, j) in nats: the log of the effective number of distinct pairs."""
    s = dist.strategy
    m = dist.max_length
    pu = dist.user_prob[dist.user_prob > 0]
    h_user = float(-(pu * np.log(pu)).sum())
    h_target = _conditional_entropy_table(s.beta, m)  # over k - 1 in 1..n-1, indexed by n - 1
    h_input = _conditional_entropy_table(s.gamma, m)  # over j in 1..k-1, indexed by k - 1
    eligible = analyzer.lengths >= 2
    e_target = float((dist.user_prob[eligible] * h_target[analyzer.lengths[eligible] - 1]).sum())
    w = analyzer.position_weights(dist)
    e_input = float((w * h_input[analyzer.t_k - 1]).sum())
    return h_user + e_target + e_input


def expected_input_length(analyzer: TargetAnalyzer, dist: PairDistribution, max_len: int | None = None) -> float:
    """E[k - j], or E[min(k - j, L)] with a maximum input length L."""
    k = analyzer.t_k
    w = analyzer.position_weights(dist)
    gamma = dist.strategy.gamma
    if gamma == math.inf:
        return float(w.sum())  # every input has one item
    if gamma == -math.inf:
        length = (k - 1).astype(np.float64)
        return float((w * (length if max_len is None else np.minimum(length, max_len))).sum())
    m = dist.max_length
    C0 = np.cumsum(power_table(gamma, m))  # sum of j^gamma
    C1 = np.cumsum(power_table(gamma + 1.0, m))  # sum of j^(gamma + 1)
    total = C0[k - 1]
    if max_len is None:
        return float((w * (k - C1[k - 1] / total)).sum())
    # j >= k - L: length k - j; j < k - L (j <= k - L - 1): length L
    cut = np.clip(k - max_len - 1, 0, None)
    p_short = C0[cut] / total
    mean_j_long = (C1[k - 1] - C1[cut]) / total
    return float((w * (max_len * p_short + k * (1.0 - p_short) - mean_j_long)).sum())


def input_length_histogram(analyzer: TargetAnalyzer, dist: PairDistribution, max_len: int) -> np.ndarray:
    """P(min(k - j, L) = l) for l = 1..L (index l - 1), exactly, in O(N L)."""
    k = analyzer.t_k
    w = analyzer.position_weights(dist)
    hist = np.zeros(max_len)
    for length in range(1, max_len):
        hist[length - 1] = (w * dist.input_prob(k - length, k)).sum()
    hist[max_len - 1] = max(0.0, 1.0 - hist[: max_len - 1].sum())  # everything cut to L items
    return hist


def top_mass(p_train: np.ndarray, popularity: np.ndarray, share: float = 0.1) -> float:
    """Target mass on the `share` most popular items (popularity = training frequency)."""
    count = max(1, int(math.ceil(share * len(popularity))))
    top = np.argsort(-popularity, kind="stable")[:count]
    return float(p_train[top].sum())


def position_mass(analyzer: TargetAnalyzer, dist: PairDistribution, bins: int = 10) -> list[float]:
    """Target mass by relative position (k - 1) / (n - 1) in `bins` equal bins (last bin = the most recent items)."""
    rel = (analyzer.t_k - 1) / np.maximum(analyzer.t_n - 1, 1)  # in (0, 1]; bins (0, 0.1], ..., (0.9, 1]
    idx = np.clip(np.ceil(rel * bins - 1e-9).astype(np.int64) - 1, 0, bins - 1)
    return np.bincount(idx, weights=analyzer.position_weights(dist), minlength=bins).tolist()
