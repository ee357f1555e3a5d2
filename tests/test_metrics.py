"""Ranking metrics: pessimistic ties, hand-computed NDCG, popularity groups, history exclusion."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from genpas.data.preprocess import build_store
from genpas.data.split import leave_one_out
from genpas.models import Popularity
from genpas.train.evaluate import evaluate
from genpas.train.metrics import popularity_groups, ranking_metrics, target_ranks


def test_ranks_count_ties_pessimistically():
    scores = torch.tensor([[0.1, 0.5, 0.5, 0.2], [1.0, 1.0, 1.0, 1.0], [3.0, 2.0, 1.0, 0.0]])
    ranks = target_ranks(scores, torch.tensor([1, 0, 0]))
    assert ranks.tolist() == [2, 4, 1]  # tie with one other item -> rank 2; constant scores -> last


def test_constant_model_scores_near_zero():
    scores = torch.zeros(100, 1000)
    ranks = target_ranks(scores, torch.randint(0, 1000, (100,))).numpy()
    m = ranking_metrics(ranks)
    assert m["recall@10"] == 0.0 and m["ndcg@10"] == 0.0


def test_ndcg_by_hand():
    m = ranking_metrics(np.array([1, 2, 6, 11]), ks=(5, 10))
    assert m["recall@5"] == pytest.approx(0.5) and m["recall@10"] == pytest.approx(0.75)
    assert m["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3)) / 4)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(7)) / 4)


def test_popularity_groups_are_equal_thirds_by_count():
    items = np.array([0] * 5 + [1] * 4 + [2] * 3 + [3] * 2 + [4] * 1 + [5] * 0)
    groups = popularity_groups(items, 6)
    assert groups.tolist() == [2, 2, 1, 1, 0, 0]


def small_split():
    rows = []
    for u in range(6):
        for t, item in enumerate(["a", "b", "c", "a", "d"][: 3 + u % 3]):
            rows.append((f"u{u}", item, float(t)))
    df = pl.DataFrame({"user": [r[0] for r in rows], "item": [r[1] for r in rows], "time": [r[2] for r in rows]})
    return leave_one_out(build_store(df))


def test_popularity_model_and_history_exclusion():
    split = small_split()
    counts = torch.from_numpy(np.bincount(split.train.items, minlength=split.full.num_items))
    model = Popularity(counts)
    kept = evaluate(model, split, "test", max_len=10)
    excluded = evaluate(model, split, "test", max_len=10, exclude_history=True)
    assert kept["exclude_history"] is False and excluded["exclude_history"] is True
    assert set(kept["groups"]) == {"tail", "middle", "head"}
    assert sum(g["users"] for g in kept["groups"].values()) == kept["users"] == 6
    # Excluding history can only move targets up (the target itself is never excluded).
    assert excluded["recall@5"] >= kept["recall@5"]


@pytest.mark.parametrize("model", ["sasrec", "hstu", "tiger"])
@pytest.mark.parametrize("exclude_history", [False, True])
def test_batching_users_by_input_length_ranks_as_user_order_does(model, exclude_history):
    """Evaluation batches users by input length (less padding); every user's rank, so every metric, is as in user
    order, for each model and with the history excluded or kept."""
    from genpas.data.synth import SynthConfig, synthesize_store
    from genpas.train import evaluate as evaluation
    from genpas.train.build import build_model
    from genpas.train.config import TrainConfig

    split = leave_one_out(synthesize_store(SynthConfig(users=90, items=40, mean_length=9, zipf=0.5, seed=4)))
    cfg = TrainConfig.for_model(dict(model=model, dim=16, layers=1, heads=2, max_len=12, levels=2, codebook_size=4,
                                     beam=40, item_embeddings="cooccurrence"))
    torch.manual_seed(0)
    net, _ = build_model(cfg, split)
    lengths = split.inputs("test").truncated(cfg.max_len).lengths
    assert len(set(lengths.tolist())) > 3  # the orders differ
    ranks = {}
    real = evaluation.target_ranks
    for by_length in (True, False):
        seen = np.zeros(len(lengths), dtype=np.int64)

        def capture(scores, targets):
            out = real(scores, targets)
            capture.batches.append(out)
            return out

        capture.batches = []
        evaluation.target_ranks = capture
        try:
            result = evaluate(net, split, "test", cfg.max_len, ks=(1, 5, 10, 20), exclude_history=exclude_history,
                              batch_size=16, by_length=by_length)
        finally:
            evaluation.target_ranks = real
        order = np.argsort(lengths, kind="stable") if by_length else np.arange(len(lengths))
        seen[order] = torch.cat(capture.batches).numpy()
        ranks[by_length] = (seen, result)
    assert np.array_equal(ranks[True][0], ranks[False][0])
    assert ranks[True][1] == ranks[False][1]
