"""Plots of the training distribution (matplotlib, Agg, PNG; written atomically)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genpas.atomic import atomic_path
from genpas.augment.strategy import bias_text


def _figure(width=6.4, height=4.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(width, height), dpi=120)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(path)


def rank_frequency(p_train: np.ndarray, p_eval: np.ndarray, label: str, path: Path) -> Path:
    """Log-log rank-frequency curves of the training-target and held-out-target distributions."""
    plt, fig, ax = _figure()
    for p, name, style in ((p_train, f"training targets ({label})", "-"), (p_eval, "held-out targets", "--")):
        values = np.sort(p[p > 0])[::-1]
        ax.loglog(np.arange(1, len(values) + 1), values, style, label=name, linewidth=1.5)
    ax.set_xlabel("item rank (by probability)")
    ax.set_ylabel("probability")
    ax.set_title("Rank-frequency of target distributions", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return _save(plt, fig, path)


def kl_heatmap(alphas, betas, kl: np.ndarray, path: Path) -> Path:
    """KL over (alpha, beta); KL does not depend on gamma (the input step never changes the target)."""
    plt, fig, ax = _figure(1.2 * len(betas) + 2.5, 0.6 * len(alphas) + 2.0)
    from matplotlib.colors import LogNorm

    norm = LogNorm(vmin=float(np.nanmin(kl)), vmax=float(np.nanmax(kl)))  # log scale: the LT column is 5x the rest
    im = ax.imshow(kl, cmap="viridis_r", aspect="auto", norm=norm)
    ax.set_xticks(range(len(betas)), [bias_text(b) for b in betas])
    ax.set_yticks(range(len(alphas)), [bias_text(a) for a in alphas])
    ax.set_xlabel("beta (target bias)")
    ax.set_ylabel("alpha (sequence bias)")
    ax.set_title("KL(held-out || training targets); the same for every gamma", fontsize=9)
    for r in range(kl.shape[0]):
        for c in range(kl.shape[1]):
            ax.text(c, r, f"{kl[r, c]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm(kl[r, c]) > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="KL (nats)")
    return _save(plt, fig, path)


def input_length_histogram(hist: np.ndarray, label: str, path: Path) -> Path:
    plt, fig, ax = _figure()
    lengths = np.arange(1, len(hist) + 1)
    ax.bar(lengths, hist, width=0.9, color="tab:blue")
    ax.set_yscale("log")  # the cut-at-L bar is often most of the mass; a log axis keeps the rest visible
    ax.set_xlabel(f"input length seen by the model (last bar: {len(hist)} or more, cut)")
    ax.set_ylabel("probability")
    ax.set_title(f"Input lengths under {label}", fontsize=10)
    return _save(plt, fig, path)

