"""Padded batches and the torch stream: content, alignment, weights, workers and ranks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from genpas.augment import genpas, make_strategy
from genpas.augment.batches import StreamConfig, TrainingStream, pair_batch
from genpas.data.store import SequenceStore


def toy_store(lengths=(6, 2, 1, 9, 4), seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths)
    items = rng.integers(0, 12, size=lengths.sum())
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return SequenceStore(offsets, items, np.arange(len(items), dtype=float),
                         np.array([f"u{i}" for i in range(len(lengths))]), np.array([f"i{i}" for i in range(12)]))


def test_pair_batch_is_left_aligned_and_truncated():
    store = toy_store()
    u, k, j = np.array([3, 3, 1]), np.array([9, 5, 2]), np.array([1, 4, 1])
    batch = pair_batch(store, u, k, j, max_len=3)
    seq3 = store.sequence(3)
    assert batch["inputs"].shape == (3, 3)
    np.testing.assert_array_equal(batch["inputs"][0], seq3[5:8] + 1)  # last 3 of s_1..s_8
    np.testing.assert_array_equal(batch["inputs"][1], [seq3[3] + 1, 0, 0])  # s_4 alone, left-aligned
    assert batch["targets"][0, 2] == seq3[8] and batch["targets"][1, 0] == seq3[4]
    assert (batch["weights"].sum(1) == 1).all()
    assert (batch["targets"][batch["weights"] == 0] == -1).all()


@pytest.mark.parametrize("mode", ["pairs", "packed"])
def test_stream_batches_are_consistent_with_the_store(mode):
    store = toy_store()
    stream = TrainingStream(store, genpas(1, 1, 0), StreamConfig(mode=mode, max_len=4, batch_size=16, seed=3))
    seen = 0
    for batch in stream:
        inputs, targets, weights = batch["inputs"], batch["targets"], batch["weights"]
        assert inputs.dtype == torch.int64 and weights.dtype == torch.float32
        torch.testing.assert_close(weights.sum(1), torch.ones(len(inputs)))
        assert ((inputs == 0) | (inputs > 0)).all()
        lengths = (inputs > 0).sum(1)
        for row in range(len(inputs)):  # left-aligned: no gaps
            assert (inputs[row, : lengths[row]] > 0).all() and (inputs[row, lengths[row]:] == 0).all()
        assert (targets[weights > 0] >= 0).all()
        seen += len(inputs)
    assert seen == stream.sampler.size
    assert len(stream) == -(-stream.sampler.size // 16)


def test_packed_mt_stream_reproduces_whole_sequences():
    store = toy_store()
    stream = TrainingStream(store, make_strategy("mt"), StreamConfig(mode="packed", max_len=20, batch_size=64))
    batch = next(iter(stream))
    for row in range(len(batch["inputs"])):
        n = int((batch["inputs"][row] > 0).sum())
        inp = batch["inputs"][row, :n].numpy() - 1
        tgt = batch["targets"][row, :n].numpy()
        seqs = [store.sequence(u) for u in range(store.num_users) if store.lengths[u] == n + 1]
        assert any(np.array_equal(np.append(inp, tgt[-1]), s) and np.array_equal(tgt, s[1:]) for s in seqs)
        torch.testing.assert_close(batch["weights"][row, :n], torch.full((n,), 1.0 / n))


def collect(loader):
    rows = Counter()
    for batch in loader:
        for inp, tgt in zip(batch["inputs"].tolist(), batch["targets"].tolist()):
            rows[(tuple(inp), tuple(tgt))] += 1
    return rows


def test_data_loader_workers_split_the_epoch_without_changing_it():
    store = toy_store()
    config = StreamConfig(mode="pairs", max_len=5, batch_size=7, seed=9, num_pairs=300)
    single = collect(DataLoader(TrainingStream(store, genpas(1, 0.5, 0), config), batch_size=None))
    # Rows are padded to the longest input of their batch, so compare the unpadded content.
    def strip(rows):
        out = Counter()
        for (inp, tgt), c in rows.items():
            n = sum(1 for x in inp if x > 0)
            out[(inp[:n], tgt[:n])] += c
        return out
    double = collect(DataLoader(TrainingStream(store, genpas(1, 0.5, 0), config), batch_size=None, num_workers=2))
    assert strip(single) == strip(double)
    assert sum(single.values()) == 300
    # ...and the batches themselves, in order: the same optimizer steps whatever the number of workers
    for packed in (config, StreamConfig(mode="packed", max_len=5, batch_size=3, seed=9)):
        one = list(DataLoader(TrainingStream(store, genpas(1, 0.5, 0), packed), batch_size=None))
        for workers in (2, 3):
            many = list(DataLoader(TrainingStream(store, genpas(1, 0.5, 0), packed), batch_size=None,
                                   num_workers=workers))
            assert len(many) == len(one) == len(TrainingStream(store, genpas(1, 0.5, 0), packed))
            for a, b in zip(one, many):
                assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ranks_get_equal_disjoint_shares():
    store = toy_store()
    config = StreamConfig(mode="pairs", max_len=5, batch_size=8, seed=1, num_pairs=101)
    parts = [TrainingStream(store, genpas(1, 0, 0), config, rank=r, world_size=2) for r in range(2)]
    bounds = [p.shard_bounds() for p in parts]
    assert bounds == [(0, 50), (50, 100)]  # 101 cut to 100: equal shares, so equal step counts
    assert len(parts[0]) == len(parts[1])


def test_classic_stream_and_its_limits():
    store = toy_store()
    stream = TrainingStream(store, make_strategy("sw"), StreamConfig(mode="pairs", max_len=50, batch_size=1000, classic=True))
    batch = next(iter(stream))
    total = sum(n * (n - 1) // 2 for n in store.lengths)
    assert len(batch["inputs"]) == total
    from genpas.errors import GenpasError

    with pytest.raises(GenpasError):
        TrainingStream(store, genpas(1, 1, 1), StreamConfig(mode="pairs", classic=True))
    with pytest.raises(GenpasError):
        TrainingStream(store, genpas(1, 1, 1), StreamConfig(mode="nope"))


def _unpadded_rows(batches, with_weights=True):
    """Each row of `batches` without its padding: (inputs, targets, weights) as tuples, counted."""
    rows = Counter()
    for batch in batches:
        for inp, tgt, w in zip(batch["inputs"].tolist(), batch["targets"].tolist(), batch["weights"].tolist()):
            n = sum(1 for x in inp if x > 0)
            rows[(tuple(inp[:n]), tuple(tgt[:n]), tuple(w[:n]) if with_weights else ())] += 1
    return rows


@pytest.mark.parametrize("mode,extra", [("packed", {}), ("pairs", {"num_pairs": 203}),
                                        ("packed", {"budget_pairs": 40}), ("pairs", {"classic": True})])
def test_grouping_by_length_keeps_every_row_and_step_and_cuts_the_padding(mode, extra):
    """The same rows with the same weights and the same number of batches (of the same sizes) as draw order; each
    batch's rows come from one group of G batches' draws, sorted by length; the padding shrinks; any number of
    workers yields the same batches; every epoch is grouped anew, and grouping is seeded."""
    store = toy_store(lengths=(30, 2, 3, 25, 4, 12, 7, 40, 5, 18, 9, 2, 33, 6), seed=4)
    strategy = make_strategy("mt") if extra.get("classic") else genpas(1, 0.5, 1)
    plain_cfg = StreamConfig(mode=mode, max_len=16, batch_size=4, seed=3, **extra)
    grouped_cfg = StreamConfig(mode=mode, max_len=16, batch_size=4, seed=3, group_by_length=4, **extra)
    plain, grouped = TrainingStream(store, strategy, plain_cfg), TrainingStream(store, strategy, grouped_cfg)
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        grouped.set_epoch(epoch)
        a, b = list(plain), list(grouped)
        assert len(a) == len(b) == len(plain)
        assert sorted(len(x["inputs"]) for x in a) == sorted(len(x["inputs"]) for x in b)  # the same batch sizes
        assert _unpadded_rows(a) == _unpadded_rows(b)
        width = [x["inputs"].shape[1] for x in a], [x["inputs"].shape[1] for x in b]
        assert sum(width[1]) < sum(width[0])  # less padding
        # each group of 4 batches holds the group's draws, each batch a run of the sorted lengths
        draws = [tuple(x) for x in plain.batch_draws()]
        for g in range(0, len(b), 4):
            group_a, group_b = a[g:g + 4], b[g:g + 4]
            assert _unpadded_rows(group_a) == _unpadded_rows(group_b)
            lengths = [sorted((x["inputs"] > 0).sum(1).tolist()) for x in group_b]
            spans = sorted((min(x), max(x)) for x in lengths)
            assert all(hi <= lo_next for (_, hi), (lo_next, _) in zip(spans, spans[1:]))
        assert len(draws) == len(a)
    again = TrainingStream(store, strategy, grouped_cfg)
    again.set_epoch(1)
    for x, y in zip(b, again):
        assert all(torch.equal(x[k], y[k]) for k in x)
    one = list(DataLoader(TrainingStream(store, strategy, grouped_cfg), batch_size=None))
    two = list(DataLoader(TrainingStream(store, strategy, grouped_cfg), batch_size=None, num_workers=2))
    assert len(one) == len(two) and all(all(torch.equal(x[k], y[k]) for k in x) for x, y in zip(one, two))


def test_draw_order_batches_are_the_samplers_draws_cut_in_turn_and_ranks_stay_equal_when_grouped():
    """G = 0 or 1: batch i holds draws i*B .. (i+1)*B - 1 of the rank's share, as the sampler gives them (the oracle:
    the concatenated draws, cut). Grouped, every rank still takes the same number of steps."""
    store = toy_store(lengths=(30, 2, 3, 25, 4, 12, 7, 40, 5, 18), seed=1)
    for mode, extra in (("packed", {}), ("pairs", {"num_pairs": 77})):
        for groups in (0, 1):
            cfg = StreamConfig(mode=mode, max_len=8, batch_size=5, seed=2, group_by_length=groups, **extra)
            stream = TrainingStream(store, genpas(1, 0.5, 1), cfg, rank=1, world_size=2)
            stream.set_epoch(3)
            start, end = stream.shard_bounds()
            draws = tuple(np.concatenate(x) for x in zip(*stream.sampler.chunks_in_range(3, start, end)))
            batches = list(stream.batch_draws())
            assert [p for _, p in batches] == list(range(start, end, 5))
            for i, (drawn, _) in enumerate(batches):
                assert all(np.array_equal(d, x[i * 5:(i + 1) * 5]) for d, x in zip(drawn, draws))
        grouped = StreamConfig(mode=mode, max_len=8, batch_size=5, seed=2, group_by_length=3, **extra)
        ranks = [list(TrainingStream(store, genpas(1, 0.5, 1), grouped, rank=r, world_size=3)) for r in range(3)]
        assert len({len(r) for r in ranks}) == 1
