"""`analyze`: every analysis of one strategy on one dataset, as one JSON-ready dict (API twin of `genpas analyze`)."""

from __future__ import annotations

import math

import numpy as np

from genpas.analysis.generalization import generalization
from genpas.analysis.target import (
    SMOOTHING,
    TargetAnalyzer,
    eval_distribution,
    expected_input_length,
    input_length_histogram,
    kl_divergence,
    pair_entropy,
    position_mass,
    top_mass,
)
from genpas.augment.distribution import PairDistribution
from genpas.augment.strategy import Strategy
from genpas.data.split import leave_one_out, training_part
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError


def analyze(
    store: SequenceStore,
    strategy: Strategy,
    split: str = "loo",
    eval_on: str = "valid",
    max_len: int = 50,
    smoothing: float = SMOOTHING,
    samples: int = 8,
    seed: int = 0,
) -> dict:
    """Target distribution, KL to the held-out targets, generalization measures and descriptors.

    split: 'loo' analyses the leave-one-out training sequences (what training sees); 'none' the whole sequences.
    eval_on: 'valid' (default, and the only choice a search may use) or 'test' (reports only).
    """
    if eval_on not in ("valid", "test"):
        raise GenpasError(f"unknown --eval {eval_on!r}; use 'valid' or 'test'")
    if max_len < 1 or samples < 1 or seed < 0:
        raise GenpasError(f"need --max-len >= 1, --samples >= 1 and --seed >= 0; got {max_len}, {samples}, {seed}")
    if not 0 <= smoothing < 1:  # (also refuses nan)
        raise GenpasError(f"--smoothing must be in [0, 1), got {smoothing}")
    loo = leave_one_out(store)
    train = training_part(store, split, loo)
    held_out = loo.inputs(eval_on)
    analyzer = TargetAnalyzer(train)
    dist = PairDistribution(train.lengths, strategy)
    p_train = analyzer.target_distribution(strategy, dist)
    p_eval = eval_distribution(held_out.targets, store.num_items)
    popularity = np.bincount(train.items, minlength=store.num_items)
    entropy = pair_entropy(analyzer, dist)
    result = {
        "strategy": {**strategy.as_dict(), "label": strategy.label},
        "split": split,
        "eval": eval_on,
        "max_len": max_len,
        "smoothing": smoothing,
        "kl": kl_divergence(p_eval, p_train, smoothing),
        **generalization(analyzer, dist, held_out, store.items, max_len, samples, seed=seed),
        "expected_input_length": expected_input_length(analyzer, dist),
        "expected_model_input_length": expected_input_length(analyzer, dist, max_len),
        "num_distinct_pairs": math.exp(entropy),
        "pair_entropy": entropy,
        "support_pairs": dist.support_size,
        "top10_target_mass": top_mass(p_train, popularity, 0.1),
        "top10_eval_mass": top_mass(p_eval, popularity, 0.1),
        "target_position_mass": position_mass(analyzer, dist),
        "input_length_histogram": input_length_histogram(analyzer, dist, max_len).tolist(),
        "target_distribution": _by_id(p_train, store.item_ids),
        "eval_distribution": _by_id(p_eval, store.item_ids),
    }
    return result


def _by_id(p: np.ndarray, ids: np.ndarray) -> dict[str, float]:
    nz = np.flatnonzero(p > 0)
    return {str(ids[i]): float(p[i]) for i in nz}


def summary_lines(result: dict) -> list[str]:
    return [
        f"strategy              {result['strategy']['label']}",
        f"KL(eval || train)     {result['kl']:.4f} nats (eval = {result['eval']} targets, smoothing {result['smoothing']:g})",
        f"alignment             {result['alignment']:.4f} +- {result['alignment_se']:.4f}"
        f"  (coverage {result['alignment_coverage']:.1%})",
        f"discrimination        {result['discrimination']:.4f} +- {result['discrimination_se']:.4f}",
        f"ratio                 {result['ratio']:.3f} +- {result['ratio_se']:.3f}",
        f"input length          {result['expected_input_length']:.1f} items "
        f"({result['expected_model_input_length']:.1f} seen at max length {result['max_len']})",
        f"distinct pairs        {result['num_distinct_pairs']:,.0f} effective of {result['support_pairs']:,} possible",
        f"top-10% items' mass   {result['top10_target_mass']:.1%} of training targets, "
        f"{result['top10_eval_mass']:.1%} of held-out targets",
    ]
