"""HSTU: causality, padding, sizes, the relative bias, the timestamp path, packed = pairs, a tiny overfit, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genpas.errors import GenpasError
from genpas.models import HSTU, HSTUConfig
from genpas.models.hstu import time_buckets


def tiny(**changes) -> HSTU:
    torch.manual_seed(0)
    cfg = dict(num_items=30, dim=16, layers=2, heads=2, attention_dim=8, linear_dim=8, max_len=8, dropout=0.0)
    model = HSTU(HSTUConfig(**{**cfg, **changes})).eval()
    with torch.no_grad():  # the bias starts at zero; give it values so the tests see it act
        for layer in model.layers:
            layer.bias.pos.normal_()
            layer.bias.time.normal_()
    return model


def times_of(x, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.cumsum(torch.randint(1, 10_000, (x.shape[0], x.shape[1] + 1), generator=g), 1).float()


def test_outputs_are_causal_and_ignore_trailing_padding():
    model = tiny()
    x = torch.tensor([[3, 5, 7, 9, 0, 0]])
    t = times_of(x)
    y = x.clone()
    y[0, 3] = 11  # a later item never changes an earlier output
    hx, hy = model(x, t), model(y, t)
    torch.testing.assert_close(hx[:, :3], hy[:, :3])
    assert not torch.allclose(hx[:, 3], hy[:, 3])
    later = t.clone()
    later[0, 4:] += 5e6  # nor does a later time (position 3's own target time is t[4])
    torch.testing.assert_close(model(x, later)[:, :3], hx[:, :3])
    torch.testing.assert_close(model(x[:, :4], t[:, :5]), hx[:, :4])  # padding after the items changes nothing


def test_times_change_outputs_and_nothing_else_does():
    model = tiny()
    x = torch.randint(1, 31, (3, 8))
    t = times_of(x)
    h = model(x, t)
    shuffled = t[:, torch.randperm(9)]
    assert not torch.allclose(model(x, shuffled), h)
    torch.testing.assert_close(model(x, t + 12345.0), h)  # only differences matter
    torch.testing.assert_close(model(x, t), h)  # deterministic in eval mode
    assert not torch.allclose(model(x), h)  # without times the time bias is off


def test_relative_bias_shapes_and_buckets():
    model = tiny()
    bias = model.layers[0].bias
    t = times_of(torch.zeros(2, 5, dtype=torch.long))
    assert bias(t, 5).shape == (2, 5, 5) and bias(None, 5).shape == (1, 5, 5)
    b = time_buckets(torch.tensor([0.0, 1.0, -1.0, 1e3, 1e9, 1e30]), 128)
    assert b.tolist()[:3] == [0, 2, 2] and b[3] < b[4] < 128 and b[5] == 127


@pytest.mark.parametrize("dim,layers,heads", [(8, 1, 1), (64, 2, 2), (256, 8, 4)])
def test_sizes(dim, layers, heads):
    model = HSTU(HSTUConfig(num_items=100, dim=dim, layers=layers, heads=heads, max_len=20))
    x = torch.randint(1, 101, (4, 20))
    scores = model.scores(model(x, times_of(x)))
    assert scores.shape == (4, 20, 100)
    scores.sum().backward()
    assert model.item_emb.weight.grad is not None and model.layers[0].bias.time.grad is not None
    assert model.rank_scores(x, times_of(x)).shape == (4, 100)
    with pytest.raises(GenpasError, match="must all be >= 1"):
        HSTU(HSTUConfig(num_items=10, attention_dim=0))


def test_a_packed_window_serves_each_target_its_pairs_input():
    """The output at position t of a window equals the output for the pair input s_e .. s_{e+t} alone."""
    model = tiny()
    x = torch.randint(1, 31, (1, 7))
    t = times_of(x)
    window = model(x, t)
    for end in range(1, 8):
        alone = model(x[:, :end], t[:, :end + 1])
        torch.testing.assert_close(alone[:, -1], window[:, end - 1])


def test_tiny_overfit():
    torch.manual_seed(1)
    model = HSTU(HSTUConfig(num_items=12, dim=32, layers=2, heads=2, max_len=6, dropout=0.0))
    x = torch.randint(1, 13, (16, 6))
    targets = torch.randint(0, 12, (16, 6))
    t = times_of(x)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(model.scores(model(x, t)).reshape(-1, 12), targets.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3


def test_genpas_train_hstu_end_to_end(tmp_path, transitions):
    from genpas.train.config import TrainConfig
    from genpas.train.trainer import train

    split, base, pop = transitions
    for mode in ("packed", "pairs"):
        hstu = train(TrainConfig(model="hstu", strategy="mt", mode=mode, **base), tmp_path / mode, split=split)
        assert hstu["valid"]["ndcg@10"] > pop["valid"]["ndcg@10"] + 0.02
        assert hstu["optimizer_steps"] > 0


def test_stream_times_follow_the_store():
    from genpas.augment import make_strategy
    from genpas.augment.batches import StreamConfig, TrainingStream
    from genpas.data.store import SequenceStore

    lengths = np.array([5, 9, 3])
    items = np.arange(lengths.sum()) % 7
    times = np.cumsum(np.arange(1, lengths.sum() + 1) ** 2).astype(float) + 1e9
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    store = SequenceStore(offsets, items, times, np.array(["a", "b", "c"]), np.array([str(i) for i in range(7)]))
    for mode in ("pairs", "packed"):
        stream = TrainingStream(store, make_strategy("sw"), StreamConfig(mode=mode, max_len=4, batch_size=64,
                                                                         times=True))
        batch = next(iter(stream))
        inputs, bt = batch["inputs"].numpy(), batch["times"].numpy()
        assert bt.shape == (inputs.shape[0], inputs.shape[1] + 1)
        for row in range(len(inputs)):
            n = int((inputs[row] > 0).sum())
            # locate the row's items in the store: the flat index of its first item
            gaps = np.diff(bt[row, : n + 1])
            assert (gaps > 0).all()  # strictly increasing times here, first one at 0
            assert bt[row, 0] == 0
            assert np.isin(gaps, np.diff(times)).all()
