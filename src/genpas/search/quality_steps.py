"""How many optimizer steps GenPAS needs to reach a baseline's validation quality, seed by seed.

The strategies experiment trains every strategy at the same optimizer steps per epoch and keeps each run's curve:
(optimizer steps, validation NDCG@10) after every epoch. Besides the final metrics, the curves say how fast each
strategy gets somewhere. For one seed:

    level          = FRACTION x the baseline's best validation NDCG@10 on that seed
    steps to level = the optimizer steps of a run's first epoch at or above the level (None: never reached)
    ratio          = GenPAS's steps to the level / the baseline's

A ratio of 0.5 says GenPAS reached the baseline's validation quality with half its compute. Read it with three
cautions, which the report's sentence carries:
- The level is the baseline's: on its own curve it sits at 98 % of the best, near the flat end, while GenPAS, if it
  ends higher, meets it lower on its own curve. So each run's steps to 98 % of its own best are given beside it.
- It is validation NDCG@10, the split runs stop on (and a search picks its setting on); a lead there may not carry to
  test, which the final comparison judges.
- Steps come in whole epochs: a baseline at its level within MIN_EPOCHS epochs gives no ratio (it could only be 1/2,
  1/3, ...), and a seed where GenPAS never reached the level counts as an infinite ratio, so the summary is the median
  over the seeds, not a mean over those that got there.
FRACTION is 98 %, as for the benchmarks' time to quality (bench/time_to_quality.py).
"""

from __future__ import annotations

import math

FRACTION = 0.98
MIN_EPOCHS = 5


def _best(curve: list) -> float | None:
    """A curve's best finite score, or None where it has none above 0 (no level to reach)."""
    scores = [score for _, score in curve if math.isfinite(score)]
    return max(scores) if scores and max(scores) > 0 else None


def first_reaching(curve: list, level: float) -> tuple[int, int] | None:
    """(epochs, optimizer steps) at the end of the first epoch of `curve` at or above `level`, or None."""
    return next(((epoch + 1, int(steps)) for epoch, (steps, score) in enumerate(curve) if score >= level), None)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered, middle = sorted(values), len(values) // 2
    return ordered[middle] if len(values) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def quality_steps(genpas_curves: list, base_curves: list, seeds: list, fraction: float = FRACTION) -> dict:
    """Seed by seed, GenPAS's and the baseline's epochs and optimizer steps to `fraction` of the baseline's best
    validation NDCG@10 (curves as the strategies experiment keeps them, in the order of `seeds`), each run's steps to
    `fraction` of its own best, and the median ratio over the seeds that give one (None for a seed without curves)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    per_seed = []
    for seed, mine, theirs in zip(seeds, genpas_curves, base_curves, strict=True):
        best, own_best = _best(theirs or []), _best(mine or [])
        if best is None or own_best is None:
            per_seed.append(None)
            continue
        level = fraction * best
        g, b = first_reaching(mine, level), first_reaching(theirs, level)
        own = first_reaching(mine, fraction * own_best)
        coarse = b[0] < MIN_EPOCHS or b[1] <= 0
        per_seed.append({"seed": seed, "level": level,
                         "genpas_epochs": g and g[0], "genpas_steps": g and g[1],
                         "baseline_epochs": b[0], "baseline_steps": b[1],
                         "genpas_steps_run": int(mine[-1][0]), "genpas_steps_to_own": own[1],
                         "ratio": None if coarse or g is None else g[1] / b[1],
                         "coarse": coarse})
    measured = [s for s in per_seed if s is not None and not s["coarse"]]
    ratios = [math.inf if s["genpas_steps"] is None else s["ratio"] for s in measured]
    median = _median(ratios)
    return {"fraction": fraction, "min_epochs": MIN_EPOCHS, "seeds": per_seed,
            "measured_seeds": len(measured), "reached": sum(s["genpas_steps"] is not None for s in measured),
            "median_ratio": median if median is not None and math.isfinite(median) else None}


def quality_sentence(found: dict, baseline: str) -> str:
    """quality_steps' result as one sentence of the report."""
    shown = [s for s in found["seeds"] if s is not None]
    if not shown:
        return f"Optimizer steps to {baseline}'s validation quality: no pair of runs keeps a usable validation curve."
    parts = []
    for s in shown:
        theirs = f"{baseline} {s['baseline_steps']:,} ({s['baseline_epochs']} epochs)"
        if s["genpas_steps"] is None:
            parts.append(f"seed {s['seed']}: GenPAS not in its {s['genpas_steps_run']:,} steps, {theirs}")
        elif s["coarse"]:
            parts.append(f"seed {s['seed']}: GenPAS {s['genpas_steps']:,} ({s['genpas_epochs']} epochs), {theirs}, too few "
                         f"epochs for a ratio")
        else:
            parts.append(f"seed {s['seed']}: GenPAS {s['genpas_steps']:,} ({s['genpas_epochs']} epochs) against {theirs}, "
                         f"ratio {s['ratio']:.2f}")
    n, reached = found["measured_seeds"], found["reached"]
    of = f"{reached} of {n} seed{'s' * (n != 1)}"
    if n <= 1 and len(shown) == 1:
        summary = ""  # the one seed's line says it all
    elif n == 0:
        summary = " No seed gives a ratio."
    elif n == 1:
        summary = f" GenPAS got there on {of}."
    elif found["median_ratio"] is None:
        summary = f" GenPAS got there on {of}: no median ratio, as the median seed never did."
    else:
        summary = f" GenPAS got there on {of}; median ratio {found['median_ratio']:.2f}."
    seeds = " / ".join(str(s["seed"]) for s in shown)
    own = " / ".join(f"{s['genpas_steps_to_own']:,}" for s in shown)
    theirs_own = " / ".join(f"{s['baseline_steps']:,}" for s in shown)
    share = f"{found['fraction'] * 100:g} %"
    return (f"Optimizer steps (and the epochs they make) to {baseline}'s validation quality, {share} of {baseline}'s best valid "
            f"NDCG@10 on the same seed: {'; '.join(parts)}.{summary} Each to {share} of its own best (seed "
            f"{seeds}): GenPAS {own}, {baseline} {theirs_own}. A measure of speed on validation (the split runs stop "
            f"on), not the comparison of test metrics above.")
