"""Input-target generalization: Alignment and Discrimination of held-out pairs against the training pairs.

The paper's exact definitions are unknown; genpas defines them (docs/method.md):

    Alignment       = E_(x', y') E_(x, y) ~ p(. | y = y')  cos(x', x)
    Discrimination  = E_(x', y') E_(x, y) ~ p(. | y != y') cos(x', x)
    ratio           = Alignment / Discrimination

(x', y') are the held-out pairs (validation input and target by default), (x, y) training pairs drawn from the
GenPAS distribution p, inputs are the items the model sees (the last L), and cos is the cosine of bag-of-items count
vectors. High Alignment: training inputs that lead to the held-out target look like the held-out input. Low
Discrimination: inputs leading elsewhere do not. Both expectations are estimated by seeded sampling (S draws per
held-out pair and measure) with standard errors over held-out pairs; the cost is linear in the held-out pairs times
S times L. Held-out targets that p never uses as a target have no aligned pairs; their share is reported as
`alignment_coverage` and they are left out of Alignment.
"""

from __future__ import annotations

import numpy as np

from genpas.analysis.target import TargetAnalyzer
from genpas.augment.distribution import PairDistribution
from genpas.data.split import EvalInputs


def _bags(items: np.ndarray, starts: np.ndarray, lengths: np.ndarray, num_items: int):
    """(owner * I + item) keys with counts, sorted, for variable-length slices items[start : start + length]."""
    owner = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    keys = owner * num_items + items[np.repeat(starts, lengths) + pos]
    uniq, counts = np.unique(keys, return_counts=True)
    norms = np.sqrt(np.bincount(uniq // num_items, weights=counts.astype(np.float64) ** 2, minlength=len(starts)))
    return uniq, counts, norms


def _cosines(query_keys, query_counts, query_norms, query_of, train_items, starts, lengths, num_items):
    """cos(query bag of query_of[c], training bag c) for every comparison c."""
    keys, counts, norms = _bags(train_items, starts, lengths, num_items)
    comparison = keys // num_items
    probe = query_of[comparison] * num_items + keys % num_items
    at = np.minimum(np.searchsorted(query_keys, probe), len(query_keys) - 1)
    shared = np.where(query_keys[at] == probe, query_counts[at], 0) * counts
    # (astype: bincount of nothing returns integers even with float weights)
    dots = np.bincount(comparison, weights=shared.astype(np.float64), minlength=len(starts)).astype(np.float64)
    denom = query_norms[query_of] * norms
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


def generalization(
    analyzer: TargetAnalyzer,
    dist: PairDistribution,
    held_out: EvalInputs,
    held_out_items: np.ndarray,
    max_len: int = 50,
    samples: int = 8,
    max_queries: int = 5000,
    seed: int = 0,
) -> dict:
    """Alignment, Discrimination, their ratio and standard errors (see the module docstring)."""
    rng = np.random.default_rng([seed, 0xA11])
    store = analyzer.store
    I = store.num_items
    q = np.arange(len(held_out.targets))
    if len(q) > max_queries:
        q = np.sort(rng.choice(len(q), max_queries, replace=False))
    cut = held_out.truncated(max_len)
    query_keys, query_counts, query_norms = _bags(held_out_items, cut.starts[q], cut.lengths[q], I)
    targets = held_out.targets[q]

    # Target positions grouped by item, with cumulative p(u) p(k | u) weights: conditional sampling on the target.
    w = analyzer.position_weights(dist)
    order = np.argsort(analyzer.t_item, kind="stable")
    cum = np.cumsum(w[order])
    bounds = np.searchsorted(analyzer.t_item[order], np.arange(I + 1))
    lo_mass = np.where(bounds[:-1] > 0, cum[np.maximum(bounds[:-1] - 1, 0)], 0.0)
    item_mass = np.where(bounds[1:] > 0, cum[np.maximum(bounds[1:] - 1, 0)], 0.0) - lo_mass
    covered = item_mass[targets] > 1e-300

    def draw_inputs(position_idx):
        """Training inputs (start, length) for positions drawn (k from the position, j ~ p(j | k))."""
        k = analyzer.t_k[position_idx]
        j = dist._draw_power(dist.strategy.gamma, dist.Cg, rng.random(len(k)), k - 1) if dist.g is not None else k - 1
        e = np.maximum(j, k - max_len)
        base = store.offsets[analyzer.t_user[position_idx]]
        return base + e - 1, k - e, analyzer.t_item[position_idx]

    # Alignment: S draws per covered query from positions whose item is the query's target.
    aq = np.repeat(np.flatnonzero(covered), samples)
    x = lo_mass[targets[aq]] + rng.random(len(aq)) * item_mass[targets[aq]]
    pos = order[np.minimum(np.searchsorted(cum, x, side="right"), len(cum) - 1)]
    starts, lengths, _ = draw_inputs(pos)
    align = _cosines(query_keys, query_counts, query_norms, aq, store.items, starts, lengths, I)

    # Discrimination: S draws per query from all positions, keeping those whose target differs from the query's.
    dq = np.repeat(np.arange(len(q)), samples)
    pos = np.minimum(np.searchsorted(np.cumsum(w), rng.random(len(dq)) * w.sum(), side="right"), len(w) - 1)
    starts, lengths, drawn_targets = draw_inputs(pos)
    keep = drawn_targets != targets[dq]
    disc = _cosines(query_keys, query_counts, query_norms, dq[keep], store.items, starts[keep], lengths[keep], I)

    def mean_and_se(values, owners, count):
        per_query_sum = np.bincount(owners, weights=values, minlength=count)
        per_query_n = np.bincount(owners, minlength=count)
        has = per_query_n > 0
        means = per_query_sum[has] / per_query_n[has]
        return float(means.mean()) if len(means) else 0.0, float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else 0.0

    a, a_se = mean_and_se(align, aq, len(q))
    d, d_se = mean_and_se(disc, dq[keep], len(q))
    ratio = a / d if d > 0 else float("inf")
    ratio_se = ratio * np.sqrt((a_se / a) ** 2 + (d_se / d) ** 2) if a > 0 and d > 0 else 0.0
    return {
        "alignment": a,
        "alignment_se": a_se,
        "discrimination": d,
        "discrimination_se": d_se,
        "ratio": ratio,
        "ratio_se": float(ratio_se),
        "alignment_coverage": float(covered.mean()),
        "queries": int(len(q)),
        "samples_per_query": samples,
    }
