"""Ranking metrics over the full catalogue (spec section 8).

Rank of the target = 1 + number of items scoring strictly higher + number of OTHER items tying with it. Ties are
counted pessimistically so that a constant model scores near zero (an optimistic count would rank every target
first). Recall@K is the hit rate (one target per user); NDCG@K = 1 / log2(rank + 1) when rank <= K, else 0.

A NaN score never helps a target: NaN counts as -inf, below every number. A NaN target therefore ranks after every
other item (at worst it ties with them, and ties are pessimistic); a NaN elsewhere is just a very low score.
Evaluation refuses NaN and +inf scores before ranking anyway (evaluate.py), so a diverged
model is an error, never a result; -inf stays legal (TIGER gives it to items outside its beam).
"""

from __future__ import annotations

import numpy as np
import torch


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Pessimistic 1-based ranks of `targets` [B] under `scores` [B, I]."""
    scores = torch.where(scores.isnan(), -torch.inf, scores)  # NaN lowest (see the module docstring)
    target_scores = scores.gather(1, targets[:, None])
    higher = (scores > target_scores).sum(1)
    ties = (scores == target_scores).sum(1) - 1
    return 1 + higher + ties


def user_values(ranks: np.ndarray, name: str, k: int) -> np.ndarray:
    """Each user's recall@k (a hit) or ndcg@k from the target's rank; a run's metric is their mean."""
    ranks = np.asarray(ranks, dtype=np.float64)
    hit = ranks <= k
    return hit.astype(np.float64) if name == "recall" else np.where(hit, 1.0 / np.log2(ranks + 1.0), 0.0)


def ranking_metrics(ranks: np.ndarray, ks=(5, 10)) -> dict[str, float]:
    return {f"{name}@{k}": float(user_values(ranks, name, k).mean()) if len(ranks) else 0.0
            for k in ks for name in ("recall", "ndcg")}


def popularity_groups(train_items: np.ndarray, num_items: int) -> np.ndarray:
    """Group of every item by training frequency: 0 = least popular third of the items, 1 = middle, 2 = most popular.

    Items are sorted by count (ties by code, so the split is deterministic) and cut into three equal-size groups.
    """
    counts = np.bincount(train_items, minlength=num_items)
    order = np.lexsort((np.arange(num_items), counts))
    groups = np.empty(num_items, dtype=np.int64)
    groups[order] = np.minimum(np.arange(num_items) * 3 // num_items, 2)
    return groups


GROUP_NAMES = ("tail", "middle", "head")
