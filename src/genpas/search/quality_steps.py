"""How many optimizer steps GenPAS needs to reach a baseline's quality, seed by seed.

The strategies experiment trains every strategy to its own convergence at the same optimizer steps per epoch, and
keeps each run's curve: (optimizer steps, validation NDCG@10) after every epoch. Besides the converged metrics, the
curves say how fast each strategy gets there. For one seed:

    level          = FRACTION x the baseline's best validation NDCG@10 on that seed
    steps to level = the optimizer steps of a run's first epoch at or above the level (None: never reached)
    ratio          = GenPAS's steps to level / the baseline's

A ratio of 0.5 says GenPAS reached the baseline's quality with half its compute. The ratios' mean ± standard error
over the seeds where GenPAS reached the level is a measure of speed, not of the converged comparison (whose verdict
is the paired difference of the final metrics); a seed where GenPAS never reached the level is named, not averaged.
FRACTION is 98 %, as for the benchmarks' time to quality (bench/time_to_quality.py), since a curve's last few
per cent are its noisiest and slowest.
"""

from __future__ import annotations

import math

FRACTION = 0.98


def first_reaching(curve: list, level: float) -> int | None:
    """The optimizer steps of the first (steps, score) point of `curve` at or above `level`, or None."""
    return next((int(steps) for steps, score in curve if score >= level), None)


def quality_steps(genpas_curves: list, base_curves: list, seeds: list, fraction: float = FRACTION) -> dict:
    """Seed by seed, GenPAS's and the baseline's optimizer steps to `fraction` of the baseline's best validation
    NDCG@10 (curves as the strategies experiment keeps them, in the order of `seeds`), and the ratios' summary."""
    per_seed = []
    for seed, mine, theirs in zip(seeds, genpas_curves, base_curves):
        if not mine or not theirs:  # a run that keeps no curve (popularity, or a record without one)
            per_seed.append(None)
            continue
        level = fraction * max(score for _, score in theirs)
        steps = first_reaching(mine, level), first_reaching(theirs, level)
        per_seed.append({"seed": seed, "level": level, "genpas_steps": steps[0], "baseline_steps": steps[1],
                         "genpas_steps_run": int(mine[-1][0]),
                         "ratio": steps[0] / steps[1] if steps[0] is not None else None})
    ratios = [s["ratio"] for s in per_seed if s is not None and s["ratio"] is not None]
    summary = None
    if ratios:
        mean = sum(ratios) / len(ratios)
        se = (math.sqrt(sum((r - mean) ** 2 for r in ratios) / (len(ratios) - 1) / len(ratios))
              if len(ratios) > 1 else None)
        summary = {"mean": mean, "standard_error": se, "seeds": len(ratios)}
    return {"fraction": fraction, "seeds": per_seed, "ratio": summary}


def quality_sentence(found: dict, baseline: str) -> str:
    """quality_steps' result as one sentence of the report."""
    share = f"{found['fraction'] * 100:g} %"
    parts = []
    for s in found["seeds"]:
        if s is None:
            continue
        if s["genpas_steps"] is None:
            parts.append(f"seed {s['seed']} GenPAS not reached in its {s['genpas_steps_run']:,} steps, "
                         f"{baseline} {s['baseline_steps']:,}")
        else:
            parts.append(f"seed {s['seed']} GenPAS {s['genpas_steps']:,} against {baseline} {s['baseline_steps']:,}")
    if not parts:
        return f"Steps to {baseline}'s quality: no run keeps a validation curve."
    ratio = found["ratio"]
    if ratio is None:
        tail = f"GenPAS reached {baseline}'s level on no seed"
    else:
        spread = f" ± {ratio['standard_error']:.2f}" if ratio["standard_error"] is not None else ""
        over = (f"mean ± standard error over {ratio['seeds']} seeds" if ratio["seeds"] > 1 else "one seed")
        shown = sum(s is not None for s in found["seeds"])
        if ratio["seeds"] < shown:
            over += f", the {'only one' if ratio['seeds'] == 1 else str(ratio['seeds'])} of {shown} where it got there"
        tail = f"GenPAS needs {ratio['mean']:.2f}{spread} of {baseline}'s optimizer steps ({over})"
    return (f"Optimizer steps to {baseline}'s quality ({share} of {baseline}'s best valid NDCG@10 on the same seed): "
            f"{'; '.join(parts)}. {tail}: how fast each gets there at equal steps per epoch, not the converged "
            f"comparison above.")
