"""Equal compute across strategies (spec section 12): epochs of equal steps, budgets of equal triples, compute keys."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from genpas.augment import EpochSampler, PairDistribution, WindowDistribution, genpas, make_strategy
from genpas.augment.batches import StreamConfig, TrainingStream
from genpas.augment.packed import TripleWindows, mt_window_count
from genpas.data.store import SequenceStore
from genpas.train.loss import Compute, batch_counts

LENGTHS = np.array([5, 2, 1, 7, 3, 2, 9, 30, 12])
STRATEGIES = [make_strategy("lt"), make_strategy("mt"), make_strategy("sw"), genpas(0.5, 0, 0), genpas(2, 4, 1),
              genpas(1, -math.inf, math.inf)]


def store_of(lengths, seed=0, num_items=15):
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    items = rng.integers(0, num_items, size=lengths.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return SequenceStore(offsets, items, np.arange(len(items), dtype=float),
                         np.array([f"u{i}" for i in range(len(lengths))]),
                         np.array([f"i{i}" for i in range(num_items)]))


@pytest.mark.parametrize("max_len", [1, 3, 8, 50])
def test_mt_window_count_is_pairs_over_mean_mt_targets(max_len):
    windows = WindowDistribution(PairDistribution(LENGTHS, make_strategy("mt")), max_len)
    pairs = int((LENGTHS[LENGTHS >= 2] - 1).sum())
    assert mt_window_count(LENGTHS, max_len) == round(pairs / windows.mean_targets)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=lambda s: s.label)
def test_every_strategy_gets_the_same_epoch_in_each_mode(strategy):
    dist = PairDistribution(LENGTHS, strategy)
    assert EpochSampler(dist).size == dist.num_mt_pairs  # pairs mode, Last-Target included
    assert EpochSampler(WindowDistribution(dist, 4)).size == mt_window_count(LENGTHS, 4)
    store = store_of(LENGTHS)
    steps = {mode: len(TrainingStream(store, strategy, StreamConfig(mode=mode, max_len=4, batch_size=3)))
             for mode in ("pairs", "packed")}
    mt = {mode: len(TrainingStream(store, make_strategy("mt"), StreamConfig(mode=mode, max_len=4, batch_size=3)))
          for mode in ("pairs", "packed")}
    assert steps == mt


def test_num_pairs_scales_the_packed_epoch_like_multi_target():
    store = store_of(LENGTHS)
    full = TrainingStream(store, genpas(0.5, 0, 0), StreamConfig(mode="packed", max_len=4))
    half = TrainingStream(store, genpas(0.5, 0, 0), StreamConfig(mode="packed", max_len=4,
                                                                 num_pairs=full.dist.num_mt_pairs // 2))
    assert half.sampler.size == round(full.sampler.size * (full.dist.num_mt_pairs // 2) / full.dist.num_mt_pairs)


def random_triples(dist, size, seed):
    return dist.sample(size, np.random.default_rng(seed))


@pytest.mark.parametrize("max_len", [1, 2, 4, 50])
def test_triple_windows_hold_exactly_the_triples(max_len):
    """Counts: weight x B / W of (window, target) is the number of triples with that effective start and target;
    loss: one pass over the windows (divided by W) is the mean loss over the triples, for any loss table."""
    dist = PairDistribution(LENGTHS, genpas(0.5, 0.5, 0))
    u, k, j = random_triples(dist, 300, 1)
    tw = TripleWindows(LENGTHS, max_len, u, k, j)
    e = np.maximum(j, k - max_len)
    expected = Counter(zip(u.tolist(), e.tolist(), k.tolist()))
    w = tw.weights(np.arange(len(tw)))
    got = Counter()
    for row in range(len(tw)):
        for col in np.flatnonzero(w[row]):
            got[(int(tw.users[row]), int(tw.starts[row]), int(tw.starts[row] + col + 1))] = \
                round(w[row, col] * len(u) / len(tw))
    assert got == expected
    assert len(tw) == len({key[:2] for key in expected})
    loss = np.random.default_rng(2).random((len(LENGTHS), 40, 40))
    packed = sum(w[r, c] * loss[tw.users[r], tw.starts[r], tw.starts[r] + c + 1]
                 for r in range(len(tw)) for c in np.flatnonzero(w[r])) / len(tw)
    assert packed == pytest.approx(loss[u, e, k].mean(), rel=1e-12)
    subset = np.array([3, 0, 3])  # any selection of windows, repeats included
    np.testing.assert_array_equal(tw.weights(subset), w[subset])


@pytest.mark.parametrize("strategy", [make_strategy("mt"), make_strategy("sw"), genpas(0.5, 0, 0)],
                         ids=lambda s: s.label)
def test_a_packed_budget_trains_on_the_same_triples_as_pairs_mode(strategy):
    store = store_of(LENGTHS)
    budget, max_len = 40, 4
    pairs = TrainingStream(store, strategy, StreamConfig(mode="pairs", max_len=max_len, seed=5, budget_pairs=budget))
    packed = TrainingStream(store, strategy, StreamConfig(mode="packed", max_len=max_len, seed=5, budget_pairs=budget))
    u, k, j = pairs.sampler.budget_draws()
    tw = packed.triple_windows
    assert tw.num_triples == budget
    e = np.maximum(j, k - max_len)
    w = tw.weights(np.arange(len(tw)))
    got = Counter()
    for row in range(len(tw)):
        for col in np.flatnonzero(w[row]):
            got[(int(tw.users[row]), int(tw.starts[row]), int(tw.starts[row] + col + 1))] = \
                round(w[row, col] * budget / len(tw))
    assert got == Counter(zip(u.tolist(), e.tolist(), k.tolist()))
    # the epoch keeps the equal-steps size and cycles through the windows, each once per cycle
    assert packed.sampler.size == mt_window_count(store.lengths, max_len)
    drawn = packed.sampler.epoch(0)
    cycle = len(tw)
    assert sorted(drawn[2][:cycle].tolist()) == list(range(cycle))
    # batches carry those weights, and one cycle's weights sum to the number of windows
    packed.config.batch_size = cycle
    first = next(iter(packed))
    assert float(first["weights"].sum()) == pytest.approx(cycle, rel=1e-5)


def test_fixed_budget_in_packed_mode_is_a_triple_budget():
    store = store_of(LENGTHS)
    fixed = TrainingStream(store, genpas(1, 1, 0), StreamConfig(mode="packed", max_len=3, fixed_budget=True))
    assert fixed.triple_windows.num_triples == fixed.dist.num_mt_pairs


def test_batch_counts_rows_targets_and_effective_targets():
    weights = torch.tensor([[1.0, 0, 0], [0.5, 0.5, 0], [0.25, 0.25, 0.5], [0, 0, 0]])
    rows, targets, effective = batch_counts(weights).tolist()
    assert (rows, targets) == (4, 6)
    assert effective == pytest.approx(1 + 2 + 1 / (2 * 0.0625 + 0.25))
    total = Compute()
    total.add(2, batch_counts(weights))
    total.add(1, batch_counts(weights[:1]))
    assert total.as_dict() == {"optimizer_steps": 3, "train_rows": 5, "train_targets": 7,
                               "effective_targets": pytest.approx(effective + 1)}


def test_packed_budget_options_are_validated_and_an_empty_share_keeps_its_shape():
    from genpas.errors import GenpasError

    store = store_of(LENGTHS)
    with pytest.raises(GenpasError, match="excludes --fixed-budget"):
        TrainingStream(store, genpas(1, 1, 0), StreamConfig(mode="packed", max_len=3, fixed_budget=True, budget_pairs=5))
    stream = TrainingStream(store, genpas(1, 1, 0), StreamConfig(mode="packed", max_len=3, budget_pairs=5))
    empty = stream.sampler.epoch(0, shard=stream.sampler.size, num_shards=stream.sampler.size + 1)
    assert len(empty) == 3 and all(len(x) == 0 for x in empty)


def test_packed_fixed_budget_holds_the_pairs_mode_fixed_set():
    store = store_of(LENGTHS)
    pairs = TrainingStream(store, genpas(1, 1, 0), StreamConfig(mode="pairs", max_len=3, seed=2, fixed_budget=True))
    packed = TrainingStream(store, genpas(1, 1, 0), StreamConfig(mode="packed", max_len=3, seed=2, fixed_budget=True))
    u, k, j = pairs.sampler.epoch(0)
    e = np.maximum(j, k - 3)
    tw = packed.triple_windows
    w = tw.weights(np.arange(len(tw)))
    got = Counter()
    for row in range(len(tw)):
        for col in np.flatnonzero(w[row]):
            got[(int(tw.users[row]), int(tw.starts[row]), int(tw.starts[row] + col + 1))] = \
                round(w[row, col] * tw.num_triples / len(tw))
    assert got == Counter(zip(u.tolist(), e.tolist(), k.tolist()))
