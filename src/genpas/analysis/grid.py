"""KL over a grid of (alpha, beta): the data of the KL heatmap.

KL depends on (alpha, beta) only, so the grid has no gamma axis; each cell is one KLScreen evaluation.
"""

from __future__ import annotations

import numpy as np

from genpas.analysis.screening import KLScreen
from genpas.analysis.target import SMOOTHING
from genpas.augment.strategy import genpas
from genpas.data.split import leave_one_out, training_part
from genpas.data.store import SequenceStore


def kl_grid(store: SequenceStore, alphas, betas, split: str = "loo", eval_on: str = "valid",
            smoothing: float = SMOOTHING) -> np.ndarray:
    """[len(alphas), len(betas)] KL values (gamma does not matter)."""
    loo = leave_one_out(store)
    screen = KLScreen(loo, eval_on, smoothing, train=training_part(store, split, loo))
    return np.array([[screen.kl(genpas(a, b, 0.0)) for b in betas] for a in alphas])
