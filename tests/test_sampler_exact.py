"""The pair distribution against exact enumeration: hand-computed multisets and an independent reference."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import polars as pl
import pytest

from genpas.augment import PairDistribution, genpas, make_strategy
from genpas.augment.batches import pair_batch
from genpas.data.preprocess import build_store
from genpas.errors import GenpasError

INF = math.inf
LENGTHS = np.array([5, 2, 1, 7, 3, 2])
GRID = [(a, b, g) for a in (0, 0.5, 1, 2, -1) for b in (0, 0.5, 1, 4, INF, -INF, -2) for g in (-INF, -2, -1, 0, 1, 3, INF)]


def reference(lengths, strategy) -> dict[tuple[int, int, int], float]:
    """p(u, k, j) straight from the definitions of spec section 3, one triple at a time (no shared code)."""
    def point_or_power(values, exponent, point):
        if exponent == INF:
            return [1.0 if v == point[1] else 0.0 for v in values]
        if exponent == -INF:
            return [1.0 if v == point[0] else 0.0 for v in values]
        return [float(v) ** exponent for v in values]

    users = [u for u, n in enumerate(lengths) if n >= 2]
    if strategy.user_weight == "windows":
        uw = {u: lengths[u] * (lengths[u] - 1) / 2 for u in users}
    else:
        uw = {u: float(lengths[u] - 1) ** strategy.alpha for u in users}
    total_u = sum(uw.values())
    out = {}
    for u in users:
        n = int(lengths[u])
        ks = list(range(2, n + 1))
        kw = point_or_power([k - 1 for k in ks], strategy.beta, (1, n - 1))
        for k, wk in zip(ks, kw):
            js = list(range(1, k))
            jw = point_or_power(js, strategy.gamma, (1, k - 1))
            for j, wj in zip(js, jw):
                p = uw[u] / total_u * wk / sum(kw) * wj / sum(jw)
                if p > 0:
                    out[(u, k, j)] = p
    return out


@pytest.mark.parametrize("abg", GRID, ids=lambda x: "a{}_b{}_g{}".format(*x))
def test_enumeration_matches_the_reference_and_sums_to_one(abg):
    strategy = genpas(*abg)
    u, k, j, p = PairDistribution(LENGTHS, strategy).enumerate()
    assert abs(p.sum() - 1.0) < 1e-12
    ref = reference(LENGTHS, strategy)
    got = {(int(a), int(b), int(c)): float(d) for a, b, c, d in zip(u, k, j, p)}
    assert got.keys() == ref.keys()
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("preset", ["lt", "mt", "sw"])
def test_presets_match_the_reference(preset):
    strategy = make_strategy(preset)
    u, k, j, p = PairDistribution(LENGTHS, strategy).enumerate()
    assert abs(p.sum() - 1.0) < 1e-12
    ref = reference(LENGTHS, strategy)
    got = {(int(a), int(b), int(c)): float(d) for a, b, c, d in zip(u, k, j, p)}
    assert got == pytest.approx(ref, rel=1e-12)


# A store with a repeated item (x twice for user A), a timestamp tie (B's y, z at t=5 keep source order),
# and a length-2 user (C), plus a length-1 user (D) who yields nothing.
HAND_EVENTS = [("A", "x", 1), ("A", "y", 2), ("A", "x", 3), ("A", "w", 4),
               ("B", "y", 5), ("B", "z", 5), ("B", "x", 6), ("C", "w", 1), ("C", "x", 2), ("D", "y", 9)]


def hand_store():
    df = pl.DataFrame({"user": [e[0] for e in HAND_EVENTS], "item": [e[1] for e in HAND_EVENTS],
                       "time": [float(e[2]) for e in HAND_EVENTS]})
    return build_store(df)


def multiset(strategy_name):
    """(input items, target) -> probability, decoded to original ids through the padded batch builder."""
    store = hand_store()
    dist = PairDistribution(store.lengths, make_strategy(strategy_name))
    u, k, j, p = dist.enumerate()
    batch = pair_batch(store, u, k, j, max_len=None)
    out = Counter()
    for row in range(len(u)):
        inp = tuple(store.item_ids[i - 1] for i in batch["inputs"][row] if i > 0)
        tgt = store.item_ids[batch["targets"][row][batch["weights"][row] > 0][0]]
        out[(store.user_ids[u[row]], inp, tgt)] += p[row]
    return out


def test_last_target_by_hand():
    got = multiset("lt")
    third = 1 / 3
    assert got == pytest.approx({("A", ("x", "y", "x"), "w"): third, ("B", ("y", "z"), "x"): third,
                                 ("C", ("w",), "x"): third})


def test_multi_target_by_hand():
    got = multiset("mt")
    sixth = 1 / 6  # 3 + 2 + 1 prefixes
    assert got == pytest.approx({
        ("A", ("x",), "y"): sixth, ("A", ("x", "y"), "x"): sixth, ("A", ("x", "y", "x"), "w"): sixth,
        ("B", ("y",), "z"): sixth, ("B", ("y", "z"), "x"): sixth, ("C", ("w",), "x"): sixth})


def test_slide_window_by_hand():
    got = multiset("sw")
    tenth = 1 / 10  # 6 + 3 + 1 windows
    expected = {
        ("A", ("x",), "y"): tenth, ("A", ("x", "y"), "x"): tenth, ("A", ("y",), "x"): tenth,
        ("A", ("x", "y", "x"), "w"): tenth, ("A", ("y", "x"), "w"): tenth, ("A", ("x",), "w"): tenth,
        ("B", ("y",), "z"): tenth, ("B", ("y", "z"), "x"): tenth, ("B", ("z",), "x"): tenth,
        ("C", ("w",), "x"): tenth}
    assert got == pytest.approx(expected)


def test_lt_and_mt_are_exactly_genpas_special_cases():
    for preset, abg in (("lt", (0, INF, -INF)), ("mt", (1, 0, -INF))):
        a = PairDistribution(LENGTHS, make_strategy(preset)).enumerate()
        b = PairDistribution(LENGTHS, genpas(*abg)).enumerate()
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=1e-14)


def test_genpas_2_1_0_differs_from_exact_sw_by_n_over_n_minus_1():
    sw = PairDistribution(LENGTHS, make_strategy("sw")).enumerate()
    g = PairDistribution(LENGTHS, genpas(2, 1, 0)).enumerate()
    for x, y in zip(sw[:3], g[:3]):
        np.testing.assert_array_equal(x, y)  # the same support
    n = LENGTHS[sw[0]].astype(float)
    ratio = g[3] / sw[3]
    # ratio = c * (n - 1) / n with one constant c: within a user it is flat, across users it moves with n
    c = ratio * n / (n - 1)
    np.testing.assert_allclose(c, c[0], rtol=1e-12)
    assert ratio.max() / ratio.min() > 1.1  # not hidden: the two really differ
    by_user = {int(u): r for u, r in zip(sw[0], ratio)}
    assert by_user[1] / by_user[3] == pytest.approx((1 / 2) / (6 / 7))  # n=2 vs n=7: ((n-1)/n) ratios


@pytest.mark.parametrize("bad", [dict(alpha=float("nan"), beta=0, gamma=0), dict(alpha=INF, beta=0, gamma=0),
                                 dict(alpha=-INF, beta=0, gamma=0), dict(alpha=0, beta=float("nan"), gamma=0),
                                 dict(alpha=0, beta=0, gamma=41), dict(alpha=50, beta=0, gamma=0)])
def test_invalid_biases_are_rejected_clearly(bad):
    with pytest.raises(GenpasError) as exc:
        genpas(**bad)
    assert "\n" not in str(exc.value)


def test_strategy_errors():
    with pytest.raises(GenpasError, match="needs --beta --gamma"):
        make_strategy("genpas", alpha=1)
    with pytest.raises(GenpasError, match="is a preset"):
        make_strategy("mt", alpha=1)
    with pytest.raises(GenpasError, match="unknown strategy"):
        make_strategy("random")


def test_large_finite_exponents_stay_finite_on_long_sequences():
    lengths = np.array([2, 50_000, 3])
    dist = PairDistribution(lengths, genpas(40, 40, -40))
    assert np.isfinite(dist.user_prob).all() and abs(dist.user_prob.sum() - 1) < 1e-12
    k = np.arange(2, 50_001)
    assert abs(dist.target_prob(np.full(len(k), 50_000), k).sum() - 1) < 1e-9
