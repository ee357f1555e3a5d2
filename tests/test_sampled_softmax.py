"""The sampled softmax: an estimator of the full-softmax cross-entropy that converges to it, and its wiring."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genpas.train.loss import SampledSoftmax


def setup(seed=0, items=40, dim=8, rows=6):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(rows, dim, generator=g)
    emb = torch.randn(items, dim, generator=g) * 0.5
    targets = torch.randint(0, items, (rows,), generator=g)
    return hidden, emb, targets


@pytest.mark.parametrize("proposal", ["uniform", "skewed"])
def test_loss_and_gradient_converge_to_the_full_softmax(proposal):
    hidden, emb, targets = setup()
    items = emb.shape[0]
    q = torch.ones(items) if proposal == "uniform" else torch.arange(1, items + 1, dtype=torch.float) ** 1.5
    full_emb = emb.clone().requires_grad_(True)
    full = F.cross_entropy(hidden @ full_emb.T, targets, reduction="none")
    full.sum().backward()
    torch.manual_seed(0)
    est_emb = emb.clone().requires_grad_(True)
    loss = SampledSoftmax(q, 1_000_000)(hidden, targets, est_emb)
    loss.sum().backward()
    torch.testing.assert_close(loss, full.detach(), atol=0.02, rtol=0)
    torch.testing.assert_close(est_emb.grad, full_emb.grad, atol=0.02, rtol=0)


def test_few_negatives_give_a_smaller_loss_and_remove_accidental_hits():
    hidden, emb, targets = setup()
    full = F.cross_entropy(hidden @ emb.T, targets, reduction="none")
    torch.manual_seed(1)
    small = SampledSoftmax(torch.ones(emb.shape[0]), 4)(hidden, targets, emb)
    assert torch.isfinite(small).all() and (small >= 0).all()
    # every negative equal to the target (a one-item catalogue besides the target is impossible): loss 0
    only = SampledSoftmax(torch.tensor([0.0, 1.0]), 3)(hidden[:2], torch.tensor([1, 1]), emb[:2])
    torch.testing.assert_close(only, torch.zeros(2))
    assert full.mean() > 0


def test_training_with_negatives(tmp_path, transitions):
    from genpas.errors import GenpasError
    from genpas.train.config import TrainConfig
    from genpas.train.trainer import train

    split, base, pop = transitions
    for sampling in ("uniform", "popularity"):
        m = train(TrainConfig(negatives=16, negative_sampling=sampling, **base), tmp_path / sampling, split=split)
        assert m["valid"]["ndcg@10"] > pop["valid"]["ndcg@10"] + 0.02
    with pytest.raises(GenpasError, match="--negative-sampling must be one of uniform, popularity"):
        train(TrainConfig(negatives=4, negative_sampling="zipf", **base), tmp_path / "bad", split=split)
    with pytest.raises(GenpasError, match="needs an item-scoring model"):
        train(TrainConfig(model="pop", negatives=4, **base), tmp_path / "pop2", split=split)
