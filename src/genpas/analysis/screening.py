"""Fast KL screening of many (alpha, beta, gamma) settings: the first step of the parameter search.

KL depends on (alpha, beta) only, so results are memoised per (alpha, beta); each new pair costs one O(N) pass.
"""

from __future__ import annotations

import numpy as np

from genpas.analysis.target import SMOOTHING, TargetAnalyzer, eval_distribution
from genpas.augment.distribution import PairDistribution
from genpas.augment.strategy import Strategy
from genpas.data.split import LeaveOneOut
from genpas.data.store import SequenceStore


class KLScreen:
    """KL(p_eval || smoothed p_train) for many strategies on one split (validation targets by default)."""

    def __init__(self, split: LeaveOneOut, eval_on: str = "valid", smoothing: float = SMOOTHING,
                 analyzer: TargetAnalyzer | None = None, train: SequenceStore | None = None):
        """`train`: the sequences the pairs come from (default: the split's training part)."""
        self.analyzer = analyzer or TargetAnalyzer(train if train is not None else split.train)
        self.smoothing = smoothing
        p_eval = eval_distribution(split.inputs(eval_on).targets, split.full.num_items)
        self.support = np.flatnonzero(p_eval > 0)
        self.p_eval = p_eval[self.support]
        self.entropy_term = float(np.sum(self.p_eval * np.log(self.p_eval)))
        self.uniform = smoothing / split.full.num_items
        self._memo: dict[tuple, float] = {}

    def kl(self, strategy: Strategy) -> float:
        key = (strategy.alpha, strategy.beta, strategy.user_weight)
        if key not in self._memo:
            dist = PairDistribution(self.analyzer.lengths, strategy)
            p_train = self.analyzer.target_distribution(strategy, dist)
            q = (1.0 - self.smoothing) * p_train[self.support] + self.uniform
            self._memo[key] = self.entropy_term - float(np.sum(self.p_eval * np.log(q)))
        return self._memo[key]
