"""SASRec itself: causality, padding, sizes, tied outputs, popularity."""

from __future__ import annotations

import pytest
import torch

from genpas.errors import GenpasError
from genpas.models import Popularity, SASRec, SASRecConfig


def test_outputs_are_causal_and_ignore_trailing_padding():
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(num_items=30, dim=16, layers=2, heads=2, max_len=8, dropout=0.0)).eval()
    x = torch.tensor([[3, 5, 7, 9, 0, 0]])
    y = x.clone()
    y[0, 3] = 11  # change a later item: earlier positions must not move
    hx, hy = model(x), model(y)
    torch.testing.assert_close(hx[:, :3], hy[:, :3])
    assert not torch.allclose(hx[:, 3], hy[:, 3])
    # Padding after the last item changes nothing up to it (left alignment needs no padding mask).
    torch.testing.assert_close(model(x[:, :4]), hx[:, :4])
    assert model.last_hidden(x).shape == (1, 16)
    torch.testing.assert_close(model.last_hidden(x), hx[:, 3])


@pytest.mark.parametrize("dim,layers,heads", [(8, 1, 1), (64, 2, 2), (512, 8, 8)])
def test_sizes_from_tiny_to_512_wide_8_layers(dim, layers, heads):
    model = SASRec(SASRecConfig(num_items=100, dim=dim, layers=layers, heads=heads, max_len=20))
    x = torch.randint(1, 101, (4, 20))
    scores = model.scores(model(x))
    assert scores.shape == (4, 20, 100)
    scores.sum().backward()
    assert model.item_emb.weight.grad is not None


def test_untied_output_layer_and_sinusoidal_positions():
    model = SASRec(SASRecConfig(num_items=10, dim=8, heads=2, tied=False, learned_positions=False, max_len=5))
    assert model.rank_scores(torch.tensor([[1, 2, 0]])).shape == (1, 10)


def test_bad_sizes_are_rejected():
    with pytest.raises(GenpasError, match="multiple of --heads"):
        SASRec(SASRecConfig(num_items=10, dim=10, heads=3))
    with pytest.raises(GenpasError, match="dropout"):
        SASRec(SASRecConfig(num_items=10, dropout=1.0))


def test_popularity_scores_every_row_alike():
    pop = Popularity(torch.tensor([3, 1, 2]))
    assert pop.rank_scores(torch.zeros(2, 4, dtype=torch.long)).tolist() == [[3.0, 1.0, 2.0]] * 2
