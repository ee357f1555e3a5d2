"""Dataset summary: the numbers a user checks first."""

from __future__ import annotations

import numpy as np

from genpas.data.split import leave_one_out
from genpas.data.store import SequenceStore


def summarize(store: SequenceStore, short_users: str = "train") -> dict:
    lengths = store.lengths
    q = np.quantile(lengths, [0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]) if len(lengths) else np.zeros(7)
    out = {
        "users": store.num_users,
        "items": store.num_items,
        "interactions": store.num_interactions,
        "density": store.num_interactions / max(1, store.num_users * store.num_items),
        "length": {
            "mean": float(lengths.mean()) if len(lengths) else 0.0,
            **{name: float(v) for name, v in zip(("min", "p25", "p50", "p75", "p90", "p99", "max"), q)},
        },
        "preprocessing": {k: v for k, v in store.stats.items() if k != "source"},
    }
    out["split"] = leave_one_out(store, short_users).summary() if (lengths >= 3).any() else None
    return out


def format_summary(summary: dict) -> str:
    ln = summary["length"]
    lines = [
        f"users         {summary['users']:>12,}",
        f"items         {summary['items']:>12,}",
        f"interactions  {summary['interactions']:>12,}",
        f"density       {summary['density']:>12.5f}",
        f"length        mean {ln['mean']:.1f} | min {ln['min']:.0f} p25 {ln['p25']:.0f} p50 {ln['p50']:.0f} "
        f"p75 {ln['p75']:.0f} p90 {ln['p90']:.0f} p99 {ln['p99']:.0f} max {ln['max']:.0f}",
        f"duplicates    {summary['preprocessing'].get('duplicates_dropped', 0):>12,} dropped",
    ]
    if "kcore_dropped" in summary["preprocessing"]:
        lines.append(f"k-core        {summary['preprocessing']['kcore_dropped']:>12,} events dropped "
                     f"in {summary['preprocessing']['kcore_rounds']} rounds")
    split = summary["split"]
    if split:
        lines.append(
            f"leave-one-out {split['eval_users']:>12,} evaluated users, {split['short_users']:,} with < 3 events "
            f"({'kept for training' if split['short_users_policy'] == 'train' else 'dropped'}), "
            f"{split['train_interactions']:,} training events"
        )
    return "\n".join(lines)
