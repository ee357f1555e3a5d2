"""Screening without training (spec section 7): KL first, then Alignment / Discrimination on the survivors.

1. KL(p_valid || p_train) for every setting of the grid (one O(N) pass per (alpha, beta); gamma does not matter).
2. Keep the `keep_fraction` with the lowest KL (ties at the cut are kept together, so gamma never decides it).
3. Rank the survivors by the ratio Alignment / Discrimination (higher first), estimated with seeded sampling.
Only validation targets are used: the test targets never influence the search.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from genpas.analysis.generalization import generalization
from genpas.analysis.screening import KLScreen
from genpas.augment.distribution import PairDistribution
from genpas.augment.strategy import genpas
from genpas.data.split import LeaveOneOut

INF = math.inf
ALPHAS = (0.0, 0.5, 1.0, 1.5, 2.0)
BETAS = (0.0, 0.5, 1.0, 2.0, 4.0, INF)
GAMMAS = (-INF, -2.0, -1.0, 0.0, 1.0)


def default_grid() -> list[tuple[float, float, float]]:
    """The spec's minimum grid: 5 x 6 x 5 = 150 settings."""
    return list(itertools.product(ALPHAS, BETAS, GAMMAS))


def screen(split: LeaveOneOut, grid=None, keep_fraction: float = 0.2, max_len: int = 50, samples: int = 8,
           seed: int = 0) -> list[dict]:
    """Every grid setting with its KL; survivors also carry alignment, discrimination and ratio (ranked first)."""
    grid = grid or default_grid()
    kl_screen = KLScreen(split)
    rows = [{"alpha": a, "beta": b, "gamma": g, "kl": kl_screen.kl(genpas(a, b, g))} for a, b, g in grid]
    cut = np.sort([r["kl"] for r in rows])[max(0, math.ceil(keep_fraction * len(rows)) - 1)]
    held_out = split.inputs("valid")
    for row in rows:
        row["survivor"] = bool(row["kl"] <= cut + 1e-12)
        if row["survivor"]:
            dist = PairDistribution(split.train.lengths, genpas(row["alpha"], row["beta"], row["gamma"]))
            g = generalization(kl_screen.analyzer, dist, held_out, split.full.items, max_len, samples, seed=seed)
            row.update(alignment=g["alignment"], discrimination=g["discrimination"], ratio=g["ratio"],
                       ratio_se=g["ratio_se"])
        else:
            row.update(alignment=None, discrimination=None, ratio=None, ratio_se=None)
    return ranked(rows)


def ranked(rows: list[dict]) -> list[dict]:
    """Survivors first, by ratio (highest first) then KL; then the others by KL. Stable: ties keep their order."""
    survivors = sorted((r for r in rows if r["survivor"]), key=lambda r: (-r["ratio"], r["kl"]))
    others = sorted((r for r in rows if not r["survivor"]), key=lambda r: r["kl"])
    return survivors + others


def spearman(x, y) -> float | None:
    """Spearman rank correlation (average ranks for ties); None with fewer than 3 points or no variation."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3:
        return None
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=float)
    for v in np.unique(values):  # average the ranks of ties
        tie = values == v
        ranks[tie] = ranks[tie].mean()
    return ranks
