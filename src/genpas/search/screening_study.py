"""Does the screening predict training? A study over the whole KL range (issue: screening, tested honestly).

The search trains only the lowest-KL settings, so the correlations it reports cover a narrow, pre-selected slice.
This experiment trains a stratified sample of the grid instead:

1. Every grid setting gets its KL (validation targets only) and, for the sampled ones, Alignment / Discrimination.
2. The grid is sorted by KL and cut into `size` strata of equal count; one setting is drawn from each (seeded), so
   the sample spans the KL range from its best to its worst.
3. Each sampled setting trains under the experiment's protocol (equal steps per epoch, validation patience) for
   every seed; its score is the mean validation NDCG@10 over seeds.
4. Reported: Spearman correlations of KL and of the ratio with that score, with percentile bootstrap 95% intervals
   (resampling settings); and the rank the screening (lowest KL fraction kept, then ratio) would have given the best
   trained setting, within the sample and within the whole grid.
5. What a search that trains every candidate for a fixed number of epochs would pick (`bounded_search`), read from
   the runs' validation curves: the cheap search's budget, tested against the converged scores.

The premise of the screening is a negative KL correlation (lower KL, better model) and a positive ratio correlation.
Whatever the data say is reported as it is.
"""

from __future__ import annotations

import time

import numpy as np

from genpas.analysis.generalization import generalization
from genpas.analysis.screening import KLScreen
from genpas.augment.distribution import PairDistribution
from genpas.augment.strategy import genpas
from genpas.errors import GenpasError
from genpas.search.screening import default_grid, screen, spearman
from genpas.train.trainer import load_split


def stratified_sample(kls: np.ndarray, size: int, seed: int) -> list[int]:
    """Indices of `size` settings: the KL order cut into `size` equal strata, one index drawn from each."""
    order = np.argsort(kls, kind="stable")
    size = min(size, len(order))
    bounds = np.linspace(0, len(order), size + 1).round().astype(int)
    rng = np.random.default_rng([seed, 0x5C])
    return [int(order[rng.integers(lo, hi)]) for lo, hi in zip(bounds[:-1], bounds[1:])]


def bootstrap_spearman(x, y, reps: int = 2000, seed: int = 0) -> dict:
    """Spearman's rho with a percentile bootstrap 95% interval over resampled (x, y) points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = spearman(x, y)
    rng = np.random.default_rng([seed, 0xB0])
    draws = []
    for _ in range(reps):
        pick = rng.integers(0, len(x), len(x))
        value = spearman(x[pick], y[pick])
        if value is not None:
            draws.append(value)
    low, high = (np.percentile(draws, [2.5, 97.5]).tolist() if draws else (None, None))
    return {"rho": rho, "ci95": [low, high], "bootstrap_reps": len(draws)}


def _correlations(rows: list[dict]) -> dict:
    """The two Spearman correlations over a subset of the trained settings (a robustness check, chosen after the
    fact: the settings with beta = inf train on each user's last item only, far from every other setting in KL)."""
    score = [r["valid"]["ndcg@10"]["mean"] for r in rows]
    return {"settings": len(rows), "rule": "beta < inf",
            "spearman_kl_vs_valid_ndcg@10": bootstrap_spearman([r["kl"] for r in rows], score),
            "spearman_ratio_vs_valid_ndcg@10": bootstrap_spearman([r["ratio"] for r in rows], score)}


BUDGET_EPOCHS = (1, 2, 5, 10, 20, 40, 80)


def bounded_search(rows: list[dict], curves: list[list], epochs=BUDGET_EPOCHS) -> dict:
    """What a search that trains every candidate for E epochs would pick, for every E up to the longest run.

    A setting's score at E: its best validation NDCG@10 within E epochs, mean over seeds (a run that stopped earlier
    keeps its best). `curves[i]` holds the [[optimizer steps, valid NDCG@10], ...] of each seed's run of `rows[i]`.
    Returns `rows` (the listed budgets `epochs`): the pick, where it stands among the converged scores, the Spearman
    of the scores with the converged ones, and how many runs had reached their own best by then; and `enough`: the
    smallest E from which the pick is the best converged setting at every larger E (None if it never is). Without
    curves (a plan, or runs recorded before the ledger kept them) `rows` is empty and `missing_curves` counts them."""
    missing = sum(not c for runs in curves for c in runs)
    if not rows or missing:
        return {"rows": [], "enough": None, "missing_curves": missing}
    per_epoch = curves[0][0][0][0]  # every strategy trains epochs of the same steps (the equal-compute protocol)
    longest = max(len(c) for runs in curves for c in runs)
    converged = np.array([r["valid"]["ndcg@10"]["mean"] for r in rows])
    peaks = [int(np.argmax([v for _, v in c])) + 1 for runs in curves for c in runs]  # epoch of each run's best

    def at(e):
        bounded = np.array([np.mean([max(v for _, v in c[:e]) for c in runs]) for runs in curves])
        pick = int(np.argmax(bounded))
        return {"epochs": e, "optimizer_steps": int(e * per_epoch),
                "pick": {k: rows[pick][k] for k in ("alpha", "beta", "gamma")},
                "pick_converged_valid_ndcg@10": float(converged[pick]),
                "pick_rank_converged": 1 + int((converged > converged[pick]).sum()),
                "spearman_vs_converged": spearman(bounded, converged),
                "runs_at_their_best": sum(p <= e for p in peaks), "runs": len(peaks)}

    every = [at(e) for e in range(1, longest + 1)]
    return {"rows": [every[e - 1] for e in epochs if e <= longest], "enough": _enough(every), "missing_curves": 0}


def _enough(rows: list[dict]) -> dict | None:
    """The first of `rows` (budgets in increasing order) from which every pick is the best converged setting."""
    enough = None
    for r in reversed(rows):
        if r["pick_rank_converged"] != 1:
            break
        enough = r
    return enough


def screening_rank(settings: list[dict]) -> list[dict]:
    """`settings` in the order the screening ranks them: its survivors (the lowest-KL fraction of the whole grid,
    flag `survivor`) first, by ratio (higher first), then the rest by KL."""
    kept = sorted((s for s in settings if s["survivor"]), key=lambda s: (-s["ratio"], s["kl"]))
    rest = sorted((s for s in settings if not s["survivor"]), key=lambda s: s["kl"])
    return kept + rest


def check_size(size: int) -> None:
    """Refuse a study of fewer settings than a rank correlation needs, or of more than the grid holds."""
    if not 3 <= size <= len(default_grid()):
        raise GenpasError(f"--settings must lie in [3, {len(default_grid())}] (a rank correlation needs 3 points; the "
                          f"grid holds {len(default_grid())}), got {size}")


def run_screening_study(settings, store, size: int = 24, keep_fraction: float = 0.2, samples: int = 8,
                        sample_seed: int = 0) -> dict:
    """Train a KL-stratified sample of the grid (see the module docstring); returns the experiment's JSON object."""
    from genpas.search.experiments import METRICS, spread

    check_size(size)
    started = time.perf_counter()
    if store.split is None:
        store.split = load_split(settings.base)
    split = store.split
    max_len = settings.base.max_len
    grid = screen(split, default_grid(), keep_fraction, max_len, samples, sample_seed)  # the search's own screening
    chosen = [grid[i] for i in stratified_sample(np.array([g["kl"] for g in grid]), size, sample_seed)]
    kl_screen = KLScreen(split)
    held_out = split.inputs("valid")
    rows, runs, curves = [], [], []
    for setting in chosen:
        a, b, g = setting["alpha"], setting["beta"], setting["gamma"]
        if setting.get("ratio") is None:  # the screening computes the ratio for its survivors only
            dist = PairDistribution(split.train.lengths, genpas(a, b, g))
            gen = generalization(kl_screen.analyzer, dist, held_out, split.full.items, max_len, samples,
                                 seed=sample_seed)
            setting = {**setting, **{k: gen[k] for k in ("alignment", "discrimination", "ratio", "ratio_se")}}
        from dataclasses import replace

        records = [store.get(replace(settings.base, seed=s, strategy="genpas", alpha=a, beta=b, gamma=g), "genpas")
                   for s in settings.seeds]
        runs += records
        curves.append([r.get("curve", []) for r in records])
        rows.append({"alpha": a, "beta": b, "gamma": g, "kl": setting["kl"], "ratio": setting["ratio"],
                     "survivor": setting["survivor"],
                     "valid": {k: spread([r["valid"][k] for r in records]) for k in METRICS},
                     "test": {k: spread([r["test"][k] for r in records]) for k in METRICS},
                     "best_epoch": [r["best_epoch"] for r in records]})
    score = [r["valid"]["ndcg@10"]["mean"] for r in rows]
    best = int(np.argmax(score))
    in_sample = screening_rank(rows)
    in_grid = grid  # screen() returns the grid in the screening's order
    key = (rows[best]["alpha"], rows[best]["beta"], rows[best]["gamma"])
    result = settings.header("screening", started, runs) | {
        "keep_fraction": keep_fraction, "grid_size": len(grid), "sample_seed": sample_seed,
        "settings": rows,
        "spearman_kl_vs_valid_ndcg@10": bootstrap_spearman([r["kl"] for r in rows], score),
        "spearman_ratio_vs_valid_ndcg@10": bootstrap_spearman([r["ratio"] for r in rows], score),
        "without_last_target": _correlations([r for r in rows if not np.isinf(r["beta"])]),
        "bounded_search": bounded_search(rows, curves),
        "best_trained": {"alpha": key[0], "beta": key[1], "gamma": key[2], "valid_ndcg@10": score[best],
                         "screening_rank_in_sample": 1 + [(r["alpha"], r["beta"], r["gamma"]) for r in in_sample]
                         .index(key),
                         "screening_rank_in_grid": 1 + [(g["alpha"], g["beta"], g["gamma"]) for g in in_grid]
                         .index(key)},
    }
    return result


def _ci(s: dict) -> str:
    """A Spearman estimate with its bootstrap interval, for the tables."""
    low, high = s["ci95"]
    rho = "n/a" if s["rho"] is None else f"{s['rho']:+.2f}"
    return rho if low is None else f"{rho} (95% bootstrap interval {low:+.2f} to {high:+.2f})"


def screening_table(result: dict) -> list[str]:
    from genpas.augment import make_strategy

    lines = ["| setting | KL | ratio | kept by the screening | valid ndcg@10 | test ndcg@10 | best epochs |",
             "|---" * 7 + "|"]
    for r in sorted(result["settings"], key=lambda r: r["kl"]):
        label = make_strategy("genpas", r["alpha"], r["beta"], r["gamma"]).label
        lines.append(f"| {label} | {r['kl']:.3f} | {r['ratio']:.3f} | {'yes' if r['survivor'] else 'no'} | "
                     f"{r['valid']['ndcg@10']['mean']:.4f} ± {r['valid']['ndcg@10']['std']:.4f} | "
                     f"{r['test']['ndcg@10']['mean']:.4f} | {', '.join(map(str, r['best_epoch']))} |")
    b = result["best_trained"]
    best = make_strategy("genpas", b["alpha"], b["beta"], b["gamma"]).label
    lines += ["", f"- Spearman of KL with validation NDCG@10 over the {len(result['settings'])} settings: "
                  f"{_ci(result['spearman_kl_vs_valid_ndcg@10'])}. The screening assumes it is negative.",
              f"- Spearman of Alignment / Discrimination with validation NDCG@10: "
              f"{_ci(result['spearman_ratio_vs_valid_ndcg@10'])}. The screening assumes it is positive.",
              *_subset_lines(result),
              f"- The best trained setting, {best} (validation NDCG@10 {b['valid_ndcg@10']:.4f}), is ranked "
              f"{b['screening_rank_in_sample']} of {len(result['settings'])} by the screening within the sample and "
              f"{b['screening_rank_in_grid']} of {result['grid_size']} within the whole grid (the lowest "
              f"{100 * result['keep_fraction']:g}% KL kept, then ranked by the ratio)."]
    return lines + _bounded_table(result)


def _bounded(result: dict) -> dict | None:
    """The result's bounded_search, in today's shape: None for results written before the check existed; a list of
    rows (its first form) read as the rows, with `enough` from the listed budgets only."""
    bounded = result.get("bounded_search")
    if not isinstance(bounded, list):
        return bounded
    return {"rows": bounded, "enough": _enough(bounded), "missing_curves": 0}


def _bounded_table(result: dict) -> list[str]:
    bounded = _bounded(result)
    if not bounded:
        return []
    if bounded["missing_curves"]:
        return ["", f"What a search bounded to a number of epochs would pick: n/a ({bounded['missing_curves']} runs "
                    f"have no validation curve in the ledger)."]
    from genpas.augment import make_strategy

    lines = ["", "What a search that trains every candidate for a fixed number of epochs would pick, read from these "
             "runs' validation curves (a candidate's score: its best validation NDCG@10 within the budget, mean over "
             "seeds):", "", "| epochs | optimizer steps | pick | its converged valid ndcg@10 | its rank, converged | "
             "Spearman with the converged scores | runs at their best by then |", "|---" * 7 + "|"]
    for r in bounded["rows"]:
        p = r["pick"]
        rho = "n/a" if r["spearman_vs_converged"] is None else f"{r['spearman_vs_converged']:+.2f}"
        lines.append(f"| {r['epochs']} | {r['optimizer_steps']:,} | "
                     f"{make_strategy('genpas', p['alpha'], p['beta'], p['gamma']).label} | "
                     f"{r['pick_converged_valid_ndcg@10']:.4f} | {r['pick_rank_converged']} of "
                     f"{len(result['settings'])} | {rho} | "
                     + (f"{r['runs_at_their_best']} of {r['runs']} |" if "runs" in r else "n/a |"))
    return lines


def _subset_lines(result: dict) -> list[str]:
    sub = result.get("without_last_target")  # absent from results written before the check existed
    if not sub or sub["settings"] == len(result["settings"]):
        return []
    return [f"- Without the settings of beta = inf (last targets only; a check chosen after seeing the results), over "
            f"{sub['settings']} settings: KL {_ci(sub['spearman_kl_vs_valid_ndcg@10'])}; Alignment / Discrimination "
            f"{_ci(sub['spearman_ratio_vs_valid_ndcg@10'])}."]


def screening_plot(result: dict, ax) -> None:
    rows = result["settings"]
    kl = [r["kl"] for r in rows]
    ndcg = [r["valid"]["ndcg@10"]["mean"] for r in rows]
    err = [r["valid"]["ndcg@10"]["std"] for r in rows]
    colors = ["C1" if r["survivor"] else "C0" for r in rows]
    ax.errorbar(kl, ndcg, yerr=err, fmt="none", ecolor="grey", alpha=0.5)
    ax.scatter(kl, ndcg, c=colors, s=18)
    ax.set_xlabel("KL(validation targets || training targets)  (orange: kept by the screening)")
    ax.set_ylabel("validation NDCG@10 (mean over seeds)")


def _bounded_summary(result: dict) -> list[str]:
    bounded = _bounded(result)
    if not bounded or not bounded["rows"]:
        return []
    enough, n = bounded["enough"], len(result["settings"])
    below = [r for r in bounded["rows"] if enough is None or r["epochs"] < enough["epochs"]]
    ranks = ", ".join(f"{r['pick_rank_converged']} at {r['epochs']}" for r in below)
    if enough is None:
        said = f"at no budget up to the longest run (ranks once converged, at E epochs: {ranks})."
    elif not below:
        said = f"at every budget from {enough['epochs']} epoch{'s' * (enough['epochs'] > 1)} on."
    else:
        peaked = (f", when {enough['runs_at_their_best']} of {enough['runs']} runs had reached their best"
                  if "runs" in enough else "")
        said = (f"from {enough['epochs']} epochs ({enough['optimizer_steps']:,} optimizer steps{peaked}) on; below "
                f"that its pick ranks, once converged, {ranks} (rank at E epochs, of {n}).")
    return [f"- A search that trains each candidate for a fixed number of epochs E picks the best converged setting "
            f"{said}"]


def _reading(s: dict, premise: str) -> str:
    """What a Spearman estimate with its bootstrap interval says about a premise on its sign."""
    low, high = s["ci95"]
    if s["rho"] is None or low is None:
        return "not measurable"
    interval = f"{s['rho']:+.2f}, 95% bootstrap interval {low:+.2f} to {high:+.2f}"
    if (premise == "negative" and high < 0) or (premise == "positive" and low > 0):
        return f"{interval}: the screening's premise holds"
    if (premise == "negative" and low > 0) or (premise == "positive" and high < 0):
        return f"{interval}: the opposite of the screening's premise"
    return f"{interval}: not distinguishable from no correlation"


def _same_protocol(a: dict, b: dict) -> bool:
    """Whether two experiments' base configurations train and evaluate alike (strategy and seed aside)."""
    from genpas.search.experiments import NOT_IN_KEY
    from genpas.train.config import LEGACY

    ignored = set(NOT_IN_KEY) | {"strategy", "alpha", "beta", "gamma", "seed"}
    a, b = {**LEGACY, **a}, {**LEGACY, **b}  # written before an option existed: its value then (train/config.py)
    return {k: v for k, v in a.items() if k not in ignored} == {k: v for k, v in b.items() if k not in ignored}


def screening_summary(result: dict, strategies: dict | None = None) -> list[str]:
    """Summary bullets: what the study found, and the best trained setting against MT on the same seeds."""
    from genpas.augment import make_strategy

    kl, ratio = result["spearman_kl_vs_valid_ndcg@10"], result["spearman_ratio_vs_valid_ndcg@10"]
    b = result["best_trained"]
    label = make_strategy("genpas", b["alpha"], b["beta"], b["gamma"]).label
    for preset in ("lt", "mt", "sw"):  # a grid point can be a classic strategy (spec section 4)
        p = make_strategy(preset)
        if (p.alpha, p.beta, p.gamma) == (b["alpha"], b["beta"], b["gamma"]):
            label += f", the parameters of {p.label}"
    n = len(result["settings"])
    lines = [f"- Screening study ({n} grid settings across the whole KL range, seeds "
             f"{', '.join(map(str, result['seeds']))}): Spearman of KL with validation NDCG@10 "
             f"{_reading(kl, 'negative')} (the screening assumes a negative one). Of Alignment / Discrimination: "
             f"{_reading(ratio, 'positive')} (it assumes a positive one)."]
    sub = result.get("without_last_target")  # absent from results written before the check existed
    if sub and sub["settings"] < n:
        lines.append(f"- Without the {n - sub['settings']} settings of beta = inf (last targets only, far from the "
                     f"rest in KL; a check chosen after seeing the results): KL "
                     f"{_reading(sub['spearman_kl_vs_valid_ndcg@10'], 'negative')}; Alignment / Discrimination "
                     f"{_reading(sub['spearman_ratio_vs_valid_ndcg@10'], 'positive')}.")
    lines.append(f"- The best trained setting, {label}, is ranked {b['screening_rank_in_sample']} of {n} by the "
                 f"screening within the sample and {b['screening_rank_in_grid']} of {result['grid_size']} in the "
                 f"grid.")
    lines += _bounded_summary(result)
    mt = (strategies or {}).get("strategies", {}).get("mt")
    if mt is not None and _same_protocol(result["config"], strategies["config"]):
        seeds = result["seeds"]
        by_seed = {r["seed"]: r for r in mt["runs"]}
        if all(s in by_seed for s in seeds):
            best = next(r for r in result["settings"]
                        if (r["alpha"], r["beta"], r["gamma"]) == (b["alpha"], b["beta"], b["gamma"]))
            parts, same = [], True
            for split in ("valid", "test"):
                mt_values = [by_seed[s][split]["ndcg@10"] for s in seeds]
                same &= best[split]["ndcg@10"]["values"] == mt_values
                parts.append(f"{split} NDCG@10 {best[split]['ndcg@10']['mean']:.4f} against "
                             f"{float(np.mean(mt_values)):.4f} for MT")
            lines.append(f"- On the same seeds it has {parts[0]}, and {parts[1]} (picked as the best of {n} on "
                         f"validation, so its validation figure is optimistic; the test figure is not)."
                         + (" Its runs give exactly the numbers of MT's runs: at MT's parameters the GenPAS "
                            "sampler trains on the same pairs as the MT preset." if same else ""))
    return lines
