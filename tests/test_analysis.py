"""Analysis against exact enumeration and hand values; the ml-100k KL order; the analyze contract."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from genpas.analysis import TargetAnalyzer, analyze, eval_distribution, kl_divergence
from genpas.analysis.generalization import _bags, _cosines
from genpas.analysis.target import expected_input_length, input_length_histogram, pair_entropy, position_mass
from genpas.augment import PairDistribution, genpas, make_strategy
from genpas.data.store import SequenceStore

INF = math.inf
STRATEGIES = [make_strategy("lt"), make_strategy("mt"), make_strategy("sw"), genpas(0.5, 1, -1), genpas(2, 4, 1),
              genpas(1, -INF, INF), genpas(-1, 0.5, 0), genpas(1.5, INF, 0)]


def toy_store(lengths=(5, 2, 1, 7, 3), num_items=6, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths)
    items = rng.integers(0, num_items, size=lengths.sum())  # repeats within sequences on purpose
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return SequenceStore(offsets, items, np.arange(len(items), dtype=float),
                         np.array([f"u{i}" for i in range(len(lengths))]), np.array([f"i{i}" for i in range(num_items)]))


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.label)
def test_target_distribution_is_the_marginal_of_the_enumeration(strategy):
    store = toy_store()
    dist = PairDistribution(store.lengths, strategy)
    u, k, j, p = dist.enumerate()
    expected = np.bincount(store.items[store.offsets[u] + k - 1], weights=p, minlength=store.num_items)
    got = TargetAnalyzer(store).target_distribution(strategy)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.label)
def test_entropy_lengths_and_positions_match_the_enumeration(strategy):
    store = toy_store()
    analyzer = TargetAnalyzer(store)
    dist = PairDistribution(store.lengths, strategy)
    u, k, j, p = dist.enumerate()
    assert pair_entropy(analyzer, dist) == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-10)
    assert expected_input_length(analyzer, dist) == pytest.approx(float((p * (k - j)).sum()), rel=1e-12)
    for L in (1, 2, 3, 10):
        truncated = np.minimum(k - j, L)
        assert expected_input_length(analyzer, dist, L) == pytest.approx(float((p * truncated).sum()), rel=1e-12)
        hist = input_length_histogram(analyzer, dist, L)
        np.testing.assert_allclose(hist, np.bincount(truncated - 1, weights=p, minlength=L), atol=1e-12)
    rel = (k - 1) / (store.lengths[u] - 1)
    bins = np.clip(np.ceil(rel * 10 - 1e-9).astype(int) - 1, 0, 9)
    np.testing.assert_allclose(position_mass(analyzer, dist), np.bincount(bins, weights=p, minlength=10), atol=1e-12)


def test_kl_by_hand():
    p_eval = np.array([0.5, 0.5, 0.0])
    p_train = np.array([0.25, 0.25, 0.5])
    assert kl_divergence(p_eval, p_train, smoothing=0.0) == pytest.approx(math.log(2))
    # A target the training never produces costs log(1 / (eps / I)), finite thanks to the smoothing.
    eps = 1e-6
    value = kl_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0]), smoothing=eps)
    assert value == pytest.approx(-math.log(eps / 2))
    assert eval_distribution(np.array([0, 0, 2]), 3).tolist() == pytest.approx([2 / 3, 0, 1 / 3])


def test_kl_ignores_gamma():
    store = toy_store()
    analyzer = TargetAnalyzer(store)
    a = analyzer.target_distribution(genpas(1, 1, -INF))
    b = analyzer.target_distribution(genpas(1, 1, 3))
    np.testing.assert_allclose(a, b)


def test_cosines_by_hand():
    items = np.array([1, 2, 2, 3, 1, 4])  # query bag: [1, 2, 2]; training bags: [2, 3], [1, 4], [1, 2, 2]
    qk, qc, qn = _bags(items, np.array([0]), np.array([3]), 5)
    cos = _cosines(qk, qc, qn, np.array([0, 0, 0]), items, np.array([2, 4, 0]), np.array([2, 2, 3]), 5)
    norm_q = math.sqrt(1 + 4)
    assert cos.tolist() == pytest.approx([2 / (norm_q * math.sqrt(2)), 1 / (norm_q * math.sqrt(2)), 1.0])


def test_generalization_is_seeded_and_sensible(ml100k):
    mt = analyze(ml100k, make_strategy("mt"), samples=4, seed=1)
    again = analyze(ml100k, make_strategy("mt"), samples=4, seed=1)
    assert mt["alignment"] == again["alignment"] and mt["discrimination"] == again["discrimination"]
    assert mt["alignment"] > mt["discrimination"] > 0  # inputs leading to a target resemble each other
    assert mt["alignment_se"] > 0 and mt["alignment_coverage"] > 0.99


def test_ml100k_kl_order_and_values(ml100k):
    kl = {name: analyze(ml100k, make_strategy(name), samples=1)["kl"] for name in ("mt", "sw", "lt")}
    assert kl["mt"] < kl["sw"] < kl["lt"]
    # An independent computation gave roughly 0.79, 1.00 and 5.15 (uniform smoothing weight 1e-6).
    assert kl["mt"] == pytest.approx(0.79, abs=0.01)
    assert kl["sw"] == pytest.approx(1.00, abs=0.01)
    assert kl["lt"] == pytest.approx(5.15, abs=0.01)


def test_cli_analyze_contract_and_plots(tmp_path, ml100k_cache, monkeypatch, capsys):
    from genpas.cli import main

    monkeypatch.setenv("GENPAS_CACHE", str(ml100k_cache))
    out = tmp_path / "a.json"
    with pytest.raises(SystemExit) as exc:
        main(["analyze", "--data", "ml-100k", "--strategy", "genpas", "--alpha", "1", "--beta", "1", "--gamma",
              "-inf", "--out", str(out), "--plots", str(tmp_path / "plots"), "--samples", "2"])
    assert exc.value.code == 0
    result = json.loads(out.read_text())
    for key in ("kl", "target_distribution", "eval_distribution", "alignment", "discrimination",
                "expected_input_length", "num_distinct_pairs"):
        assert key in result
    assert sum(result["target_distribution"].values()) == pytest.approx(1.0)
    assert sum(result["eval_distribution"].values()) == pytest.approx(1.0)
    assert "1" in result["target_distribution"]  # original ml-100k ids
    for name in ("rank_frequency.png", "kl_heatmap.png", "input_length.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "KL(eval || train)" in capsys.readouterr().out


def test_kl_grid_agrees_with_analyze(ml100k):
    from genpas.analysis.grid import kl_grid

    grid = kl_grid(ml100k, (0.0, 1.0), (0.0, math.inf))
    assert grid[1, 0] == pytest.approx(analyze(ml100k, make_strategy("mt"), samples=1)["kl"], rel=1e-12)
    assert grid[0, 1] == pytest.approx(analyze(ml100k, make_strategy("lt"), samples=1)["kl"], rel=1e-12)
