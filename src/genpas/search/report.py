"""Reports: Markdown tables and bar charts of strategy comparisons (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path

from genpas.atomic import atomic_path

KEYS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def markdown_table(results: dict, title: str, config=None) -> str:
    lines = [f"# {title}", ""]
    if config is not None:
        lines += [f"Model `{config.model}` dim {config.dim}, {config.layers} layers, {config.heads} heads, max length "
                  f"{config.max_len}, mode `{config.mode}`, batch {config.batch_size}"
                  + (f" grouped by length ({config.group_by_length})" if config.group_by_length > 1 else "")
                  + f", lr {config.lr}, seed "
                  f"{config.seed}, time budget {config.time_budget_minutes} min per strategy. Full ranking over all "
                  f"items, pessimistic ties, history {'excluded' if config.exclude_history else 'kept'}.", ""]
    lines.append("| strategy | " + " | ".join(f"valid {k}" for k in KEYS) + " | " + " | ".join(f"test {k}" for k in KEYS)
                 + " | best epoch | train s |")
    lines.append("|---" * (2 * len(KEYS) + 3) + "|")
    for label, m in results.items():
        lines.append(f"| {label} | " + " | ".join(f"{m['valid'][k]:.4f}" for k in KEYS) + " | "
                     + " | ".join(f"{m['test'][k]:.4f}" for k in KEYS) + f" | {m['best_epoch']} | {m['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def bar_chart(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(results)
    metrics = ("recall@10", "ndcg@10", "recall@5", "ndcg@5")
    x = np.arange(len(labels))
    width = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(labels)), 4.2), dpi=120)
    for i, key in enumerate(metrics):
        values = [results[label]["test"][key] for label in labels]
        bars = ax.bar(x + (i - (len(metrics) - 1) / 2) * width, values, width, label=f"test {key}")
        ax.bar_label(bars, fmt="%.3f", fontsize=6, padding=1, rotation=90)
    ax.set_xticks(x, labels, rotation=15, ha="right", fontsize=8)
    ax.set_ylabel("metric value")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncols=2, loc="upper left")
    ax.margins(y=0.25)
    save_figure(fig, ax, path)


def save_figure(fig, ax, path: Path) -> None:
    """Finish a chart (no top/right spines, tight layout) and write it as PNG, atomically; then free it."""
    import matplotlib.pyplot as plt

    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
