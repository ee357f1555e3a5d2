"""Samplers against the exact distribution: statistical tests on seeded samples, shards, classic epochs, packing."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from genpas.augment import ClassicEpochs, EpochSampler, PairDistribution, WindowDistribution, genpas, make_strategy
from genpas.augment.sampler import BLOCK, FeistelPermutation, shard_range

INF = math.inf
LENGTHS = np.array([5, 2, 1, 7, 3, 2, 9])
STRATEGIES = [make_strategy("lt"), make_strategy("mt"), make_strategy("sw"), genpas(0.5, 1, -1), genpas(2, 4, 1),
              genpas(1, -INF, INF), genpas(-1, 0.5, 0), genpas(1.5, INF, 0)]


def chi_square_pvalue(observed: Counter, expected: dict, n: int) -> float:
    keys = list(expected)
    assert set(observed) <= set(keys), "a sampled triple has zero probability"
    f_obs = np.array([observed.get(key, 0) for key in keys], dtype=float)
    f_exp = np.array([expected[key] for key in keys]) * n
    return stats.chisquare(f_obs, f_exp * f_obs.sum() / f_exp.sum()).pvalue


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.label)
def test_sampled_triples_follow_the_exact_distribution(strategy):
    dist = PairDistribution(LENGTHS, strategy)
    u, k, j, p = dist.enumerate()
    expected = {(a, b, c): d for a, b, c, d in zip(u.tolist(), k.tolist(), j.tolist(), p)}
    n = 200_000
    su, sk, sj = dist.sample(n, np.random.default_rng(7))
    observed = Counter(zip(su.tolist(), sk.tolist(), sj.tolist()))
    assert chi_square_pvalue(observed, expected, n) > 1e-3


@pytest.mark.parametrize("strategy", STRATEGIES[:5], ids=lambda s: s.label)
def test_marginals_by_kolmogorov_smirnov_on_long_sequences(strategy):
    """On one long sequence the target position follows p(k | u) (a second, distribution-free check)."""
    lengths = np.array([400])
    dist = PairDistribution(lengths, strategy)
    _, k, _ = dist.sample(50_000, np.random.default_rng(3))
    ks = np.arange(2, 401)
    cdf = np.cumsum(dist.target_prob(np.full(len(ks), 400), ks))
    empirical = np.searchsorted(np.sort(k), ks, side="right") / len(k)
    assert np.abs(empirical - cdf).max() < 1.63 / math.sqrt(len(k))  # KS critical value at alpha = 0.01


def test_epochs_are_seeded_and_sharding_is_exact():
    dist = PairDistribution(LENGTHS, genpas(1, 1, 0))
    sampler = EpochSampler(dist, seed=5, size=3 * BLOCK + 123)
    full = sampler.epoch(0)
    again = EpochSampler(dist, seed=5, size=3 * BLOCK + 123).epoch(0)
    for a, b in zip(full, again):
        np.testing.assert_array_equal(a, b)
    other_epoch = sampler.epoch(1)
    assert not np.array_equal(full[0], other_epoch[0])
    for shards in (2, 3, 7):
        parts = [sampler.epoch(0, s, shards) for s in range(shards)]
        sizes = [len(p[0]) for p in parts]
        assert sum(sizes) == sampler.size and max(sizes) - min(sizes) <= 1
        for col in range(3):  # the shards tile the epoch: same pairs, same order, no overlap, nothing lost
            np.testing.assert_array_equal(np.concatenate([p[col] for p in parts]), full[col])


def test_default_epoch_size_is_the_multi_target_count():
    dist = PairDistribution(LENGTHS, genpas(1, 1, 0))
    assert EpochSampler(dist).size == int((LENGTHS[LENGTHS >= 2] - 1).sum())


def test_fixed_budget_draws_once_and_reshuffles():
    dist = PairDistribution(LENGTHS, genpas(1, 1, 0))
    sampler = EpochSampler(dist, seed=1, size=40, fixed_budget=True)
    e0, e1 = sampler.epoch(0), sampler.epoch(1)
    assert Counter(zip(*[x.tolist() for x in e0])) == Counter(zip(*[x.tolist() for x in e1]))
    assert any(not np.array_equal(a, b) for a, b in zip(e0, e1))


def test_pair_budget_cycles_through_a_set_drawn_once():
    dist = PairDistribution(LENGTHS, genpas(1, 1, 0))
    sampler = EpochSampler(dist, seed=1, size=50, budget=10)
    fixed = Counter(zip(*[x.tolist() for x in EpochSampler(dist, seed=1, size=10).epoch(0)]))  # epoch 0's first 10
    for epoch in (0, 3):
        triples = list(zip(*[x.tolist() for x in sampler.epoch(epoch)]))
        assert len(triples) == 50
        for cycle in range(5):  # each cycle of 10 draws is a permutation of the fixed set
            assert Counter(triples[10 * cycle: 10 * cycle + 10]) == fixed
    assert sampler.epoch(0)[0].tolist() != sampler.epoch(3)[0].tolist()  # reshuffled per epoch
    shards = [sampler.epoch(2, shard, 3) for shard in range(3)]  # shards tile the epoch exactly
    assert [np.concatenate(x).tolist() for x in zip(*shards)] == [x.tolist() for x in sampler.epoch(2)]
    from genpas.errors import GenpasError

    with pytest.raises(GenpasError, match="excludes --fixed-budget"):
        EpochSampler(dist, size=50, budget=10, fixed_budget=True)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 17, 64, 1000, 4097])
def test_feistel_is_a_bijection(size):
    perm = FeistelPermutation(size, (3, 1))(np.arange(size, dtype=np.uint64))
    assert sorted(perm.tolist()) == list(range(size))


@pytest.mark.parametrize("preset", ["lt", "mt", "sw"])
def test_classic_epoch_visits_every_pair_once(preset):
    classic = ClassicEpochs(LENGTHS, preset, seed=2)
    exact = PairDistribution(LENGTHS, make_strategy(preset)).enumerate()
    expected = sorted(zip(*[x.tolist() for x in exact[:3]]))
    e0 = classic.epoch(0)
    assert sorted(zip(*[x.tolist() for x in e0])) == expected
    e1 = classic.epoch(1)
    assert sorted(zip(*[x.tolist() for x in e1])) == expected
    if len(expected) > 3:
        assert list(zip(*[x.tolist() for x in e0])) != list(zip(*[x.tolist() for x in e1]))
    parts = [classic.epoch(0, s, 3) for s in range(3)]
    for col in range(3):
        np.testing.assert_array_equal(np.concatenate([p[col] for p in parts]), e0[col])


def test_classic_sw_index_decoding_on_long_sequences():
    lengths = np.array([3000, 2, 1500])
    classic = ClassicEpochs(lengths, "sw")
    idx = np.arange(classic.num_pairs)
    u, k, j = classic.triples_at(idx)
    assert ((j >= 1) & (j < k) & (k <= lengths[u])).all()
    key = u * 10**8 + k * 10**4 + j
    assert np.all(np.diff(key) > 0)  # canonical order, so distinct and complete (count matches)
    assert classic.num_pairs == sum(n * (n - 1) // 2 for n in lengths)


def test_shard_range_validates():
    assert shard_range(10, 0, 3) == (0, 4) and shard_range(10, 2, 3) == (7, 10)
    with pytest.raises(Exception):
        shard_range(10, 3, 3)


# ---------------------------------------------------------------------------------------------------------------- packed

def exact_windows(dist: PairDistribution, max_len: int):
    """q(u, e) and w(k | u, e) by grouping the exact enumeration by effective start e = max(j, k - L)."""
    u, k, j, p = dist.enumerate()
    e = np.maximum(j, k - max_len)
    q, w = Counter(), Counter()
    for a, b, c, d in zip(u.tolist(), k.tolist(), e.tolist(), p):
        q[(a, c)] += d
        w[(a, c, b)] += d
    return q, {key: value / q[key[:2]] for key, value in w.items()}


@pytest.mark.parametrize("max_len", [1, 2, 3, 50])
@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.label)
def test_packed_weights_equal_the_exact_conditional_probabilities(strategy, max_len):
    dist = PairDistribution(LENGTHS, strategy)
    windows = WindowDistribution(dist, max_len)
    q_exact, w_exact = exact_windows(dist, max_len)
    q_got = {(int(a), int(b)): v for a, b, v in zip(windows.users, windows.starts, windows.q) if v > 0}
    assert q_got.keys() == q_exact.keys()
    for key in q_exact:
        assert q_got[key] == pytest.approx(q_exact[key], rel=1e-10)
    us = np.array([key[0] for key in q_exact])
    es = np.array([key[1] for key in q_exact])
    weights = windows.weights(us, es)
    for row, (a, c) in enumerate(q_exact):
        for t in range(1, max_len + 1):
            assert weights[row, t - 1] == pytest.approx(w_exact.get((a, c, c + t), 0.0), abs=1e-12)


def test_packed_sampling_follows_q():
    dist = PairDistribution(LENGTHS, genpas(1, 1, 0))
    windows = WindowDistribution(dist, 3)
    q = {(int(a), int(b)): v for a, b, v in zip(windows.users, windows.starts, windows.q) if v > 0}
    u, e = windows.sample(100_000, np.random.default_rng(11))
    assert chi_square_pvalue(Counter(zip(u.tolist(), e.tolist())), q, 100_000) > 1e-3


def test_packed_mt_without_truncation_is_the_usual_causal_loss():
    """MT with every n <= L + 1: one window per user at e = 1, uniform weights over its n - 1 targets."""
    dist = PairDistribution(LENGTHS, make_strategy("mt"))
    windows = WindowDistribution(dist, max_len=20)
    support = windows.q > 0
    assert (windows.starts[support] == 1).all()
    users = windows.users[support]
    np.testing.assert_allclose(windows.q[support], (LENGTHS[users] - 1) / (LENGTHS[LENGTHS >= 2] - 1).sum())
    w = windows.weights(users, np.ones_like(users))
    for row, u in enumerate(users):
        np.testing.assert_allclose(w[row, : LENGTHS[u] - 1], 1 / (LENGTHS[u] - 1))
        assert (w[row, LENGTHS[u] - 1:] == 0).all()


def test_packed_expected_loss_equals_pairs_expected_loss():
    """For any per-(input, target) loss, E_q[sum_t w_t loss] = E_p[loss]: checked with a random loss table."""
    rng = np.random.default_rng(0)
    max_len = 3
    dist = PairDistribution(LENGTHS, genpas(0.5, 2, -1))
    windows = WindowDistribution(dist, max_len)
    loss = rng.random((len(LENGTHS), 20, 20))  # loss[u, e, k]: depends on the input the model sees and the target
    u, k, j, p = dist.enumerate()
    e = np.maximum(j, k - max_len)
    pairs_loss = (p * loss[u, e, k]).sum()
    su, se = windows.users[windows.q > 0], windows.starts[windows.q > 0]
    w = windows.weights(su, se)
    packed = 0.0
    for row in range(len(su)):
        for t in range(1, max_len + 1):
            if w[row, t - 1] > 0:
                packed += windows.q[windows.q > 0][row] * w[row, t - 1] * loss[su[row], se[row], se[row] + t]
    assert packed == pytest.approx(pairs_loss, rel=1e-12)


# ---------------------------------------------------------------------------------------------- fast inverse CDFs

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from genpas.augment.distribution import power_table  # noqa: E402
from genpas.augment.inverse_cdf import GuideTable, power_cdf_inverse  # noqa: E402


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 10), min_size=1, max_size=50), st.integers(0, 2**31))
def test_guide_table_equals_searchsorted(weights, seed):
    cdf = np.cumsum(weights)
    if cdf[-1] <= 0:
        return
    x = np.random.default_rng(seed).random(500) * cdf[-1]
    np.testing.assert_array_equal(GuideTable(cdf)(x), np.searchsorted(cdf, x, side="right"))


@pytest.mark.parametrize("exponent", [-40, -5, -2, -1.5, -1, -0.5, 0.5, 1, 1.5, 2, 4, 10, 40])
def test_power_inverse_equals_searchsorted(exponent):
    size = 3000
    C = np.cumsum(power_table(exponent, size))
    rng = np.random.default_rng(0)
    upper = rng.integers(1, size + 1, 20_000)
    x = rng.random(20_000) * C[upper]
    expected = np.clip(np.searchsorted(C, x, side="right"), 1, upper)
    np.testing.assert_array_equal(power_cdf_inverse(C, exponent, x, upper), expected)


def test_a_shorter_epoch_is_a_prefix_of_a_longer_one():
    dist = PairDistribution(LENGTHS, genpas(1, 1, 0))
    long = EpochSampler(dist, seed=2, size=BLOCK + 500).epoch(3)
    short = EpochSampler(dist, seed=2, size=BLOCK + 17).epoch(3)
    for a, b in zip(long, short):
        np.testing.assert_array_equal(a[: len(b)], b)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.label)
def test_support_size_counts_the_enumeration(strategy):
    dist = PairDistribution(LENGTHS, strategy)
    assert dist.support_size == len(dist.enumerate()[0])
