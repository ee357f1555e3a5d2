"""The plots of an experiment's results: its headline figure (bars or a curve per strategy, by experiment) and, for
the strategies compared, the validation curves of every run."""

from __future__ import annotations

from pathlib import Path

from genpas.search.report import save_figure
from genpas.search.screening_study import screening_plot
from genpas.train.metrics import GROUP_NAMES

TITLES = {"strategies": "Strategies compared over seeds", "long-tail": "Long tail: metrics by item popularity",
          "data-efficiency": "Data efficiency: a fraction of the pairs", "model-size": "Model size",
          "screening": "Does the screening predict training?"}

def experiment_plot(result: dict, path: Path) -> None:
    save_figure(*experiment_figure(result), path)


def experiment_figure(result: dict):
    """The experiment's headline figure, drawn but not written: (figure, axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    kind = result["experiment"]
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=120)
    if kind == "strategies":
        rows = list(result["strategies"].values())
        x = np.arange(len(rows))
        for i, split in enumerate(("valid", "test")):
            means = [r[split]["ndcg@10"]["mean"] for r in rows]
            stds = [r[split]["ndcg@10"]["std"] for r in rows]
            bars = ax.bar(x + (i - 0.5) * 0.38, means, 0.38, yerr=stds, capsize=3, label=f"{split} NDCG@10")
            ax.bar_label(bars, fmt="%.4f", fontsize=6, padding=2)
        ax.set_xticks(x, [r["label"] for r in rows], rotation=15, ha="right", fontsize=8)
        ax.set_ylabel("NDCG@10 (mean ± std over seeds)")
    elif kind == "long-tail":
        rows = list(result["strategies"].values())
        x = np.arange(len(GROUP_NAMES))
        width = 0.8 / len(rows)
        for i, r in enumerate(rows):
            means = [r["groups"][g]["ndcg@10"]["mean"] for g in GROUP_NAMES]
            stds = [r["groups"][g]["ndcg@10"]["std"] for g in GROUP_NAMES]
            ax.bar(x + (i - (len(rows) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=r["label"])
        ax.set_xticks(x, [f"{g} third" for g in GROUP_NAMES])
        ax.set_ylabel("test NDCG@10 by target popularity")
    elif kind == "data-efficiency":
        fractions = [100 * r["fraction"] for r in result["rows"]]
        for i, (name, label) in enumerate(result["labels"].items()):
            color = f"C{i}"  # one colour per strategy: solid test, dashed validation
            means = [r[name]["test"]["ndcg@10"]["mean"] for r in result["rows"]]
            ax.plot(fractions, means, marker="o", color=color, label=f"{label} (test)")
            means = [r[name]["valid"]["ndcg@10"]["mean"] for r in result["rows"]]
            ax.plot(fractions, means, marker="x", linestyle="--", color=color, alpha=0.6, label=f"{label} (valid)")
        ax.set_xscale("log")
        ax.set_xticks(fractions, [f"{f:g}%" for f in fractions])
        ax.set_xlabel("share of the MT pair count, drawn once")
        ax.set_ylabel("NDCG@10")
    elif kind == "screening":
        screening_plot(result, ax)
    elif kind == "model-size":
        rows = result["rows"]
        x = np.arange(len(rows))
        width = 0.8 / len(result["labels"])
        for i, (name, label) in enumerate(result["labels"].items()):
            means = [r[name]["test"]["ndcg@10"]["mean"] for r in rows]
            ax.bar(x + (i - (len(result["labels"]) - 1) / 2) * width, means, width, label=f"{label} (test)")
        ax.set_xticks(x, [f"{r['dim']}w x {r['layers']}L" for r in rows], fontsize=8)
        ax.set_ylabel("test NDCG@10")
    ax.set_title(f"{TITLES[kind]} ({result['data']})", fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return fig, ax


def curves_plot(result: dict, path: Path) -> bool:
    """Validation NDCG@10 against optimizer steps, one colour per strategy, one line per seed (convergence at a
    glance). False when the runs carry no curves (popularity only, or records from before curves were kept)."""
    drawn = curves_figure(result)
    if drawn is not None:
        save_figure(*drawn, path)
    return drawn is not None


def curves_figure(result: dict):
    """curves_plot's figure, drawn but not written: (figure, axes), or None where the runs carry no curves."""
    rows = [r for r in result["strategies"].values() if any(r.get("curves") or [])]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=120)
    for i, row in enumerate(rows):
        for s, curve in enumerate(row["curves"]):
            if curve:
                steps, ndcg = zip(*curve)
                ax.plot(steps, ndcg, color=f"C{i}", alpha=0.75, linewidth=1,
                        label=row["label"] if s == 0 else None)
    ax.set_xlabel("optimizer steps")
    ax.set_ylabel("validation NDCG@10 after each epoch")
    ax.set_title(f"Validation curves, one line per seed ({result['data']})", fontsize=10)
    ax.legend(fontsize=7)
    return fig, ax
