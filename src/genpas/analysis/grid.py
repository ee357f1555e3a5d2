"""KL over a grid of (alpha, beta): the screening step of the parameter search, and the heatmap's data.

KL depends on (alpha, beta) only, so a grid over (alpha, beta, gamma) costs one pass per (alpha, beta) cell.
"""

from __future__ import annotations

import numpy as np

from genpas.analysis.target import SMOOTHING, TargetAnalyzer, eval_distribution, kl_divergence
from genpas.augment.distribution import PairDistribution
from genpas.augment.strategy import genpas
from genpas.data.split import leave_one_out
from genpas.data.store import SequenceStore


def kl_grid(store: SequenceStore, alphas, betas, split: str = "loo", eval_on: str = "valid",
            smoothing: float = SMOOTHING) -> np.ndarray:
    """[len(alphas), len(betas)] KL values (gamma does not matter)."""
    loo = leave_one_out(store)
    train = loo.train if split == "loo" else store
    analyzer = TargetAnalyzer(train)
    p_eval = eval_distribution(loo.inputs(eval_on).targets, store.num_items)
    out = np.zeros((len(alphas), len(betas)))
    for r, a in enumerate(alphas):
        for c, b in enumerate(betas):
            strategy = genpas(a, b, 0.0)
            p_train = analyzer.target_distribution(strategy, PairDistribution(train.lengths, strategy))
            out[r, c] = kl_divergence(p_eval, p_train, smoothing)
    return out
