"""Two finished runs compared user by user (`genpas compare --run A --baseline B`).

Both runs rank every evaluated user's target (validation or test) under one protocol: the ranks a finished run keeps
(ranks.npz, train/ranks.py), or else its best checkpoint ranks them anew; a user's
NDCG@K (or Recall@K) under A minus under B is the user's paired difference. Its mean is exactly the difference of
the two runs' metrics; its standard error is sd / sqrt(n) over the n users, and a 95 % interval comes from
resampling the users (percentile bootstrap, seeded). A lead of more than two standard errors is one the choice of
evaluated users does not explain, for this pair of runs: it says nothing of other seeds, whose spread
`genpas experiment strategies` measures (a method's win needs both).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from genpas.errors import GenpasError

SPLITS = ("valid", "test")


def user_metric(ranks: np.ndarray, metric: str) -> np.ndarray:
    """Each user's ndcg@K or recall@K from the target's rank (metrics.user_values, whose mean is the run's metric)."""
    from genpas.train.metrics import user_values

    return user_values(ranks, *parse_metric(metric))


def parse_metric(metric: str) -> tuple[str, int]:
    found = re.fullmatch(r"(ndcg|recall)@([1-9][0-9]*)", metric)
    if found is None:
        raise GenpasError(f"--metric must be ndcg@K or recall@K (K >= 1), got {metric!r}")
    return found.group(1), int(found.group(2))


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = 10_000, seed: int = 0) -> dict:
    """Mean, standard error and bootstrap interval of a - b over paired users, and how many users each side wins."""
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise GenpasError("a paired comparison needs the same users, at least two, on both sides")
    check_options(resamples, seed)
    d = a - b
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))
    interval = None
    if resamples:
        rng, means = np.random.default_rng(seed), []
        chunk = max(1, min(500, 2_000_000 // len(d)))  # resamples drawn at a time: at most 2M indices (16 MB)
        for start in range(0, resamples, chunk):
            idx = rng.integers(0, len(d), size=(min(chunk, resamples - start), len(d)))
            means.append(d[idx].mean(axis=1))
        interval = [float(q) for q in np.quantile(np.concatenate(means), [0.025, 0.975])]
    return {"users": int(len(d)), "a": float(a.mean()), "b": float(b.mean()), "difference": mean,
            "standard_error": se, "z": mean / se if se > 0 else None,  # None: no spread at all (JSON has no inf)
            "ci95": interval, "resamples": resamples, "seed": seed,
            "a_better": int((d > 0).sum()), "b_better": int((d < 0).sum()), "equal": int((d == 0).sum()),
            "verdict": verdict(mean, se)}


def check_options(resamples: int, seed: int) -> None:
    if resamples != 0 and resamples < 100:
        raise GenpasError(f"--resamples must be 0 (no bootstrap interval) or at least 100, got {resamples}")
    if seed < 0:
        raise GenpasError(f"--seed must be >= 0, got {seed}")


def verdict(mean: float, se: float, a: str = "A", b: str = "B") -> str:
    """The one rule every user-level comparison reads: a side is ahead when the mean difference a - b is beyond two
    standard errors of the users."""
    if abs(mean) > 2 * se:
        return (a if mean > 0 else b) + " ahead by more than two standard errors"
    return "within two standard errors"


KEPT = ("difference", "standard_error", "z", "a_better", "b_better", "verdict")  # what a result file keeps of a pair


def paired_ranks(a: np.ndarray, b: np.ndarray, metric: str) -> dict:
    """A minus B over the same users on `metric` from their target ranks, as a result file keeps it (KEPT; no
    bootstrap): the one pairing of the main job's runs (search/compare.py) and of an experiment's seeds
    (search/experiments.py)."""
    d = paired_difference(user_metric(a, metric), user_metric(b, metric), resamples=0)
    return {k: d[k] for k in KEPT}


def compare_runs(run_a: Path, run_b: Path, which: str = "test", metric: str = "ndcg@10", resamples: int = 10_000,
                 seed: int = 0, exclude_history: bool | None = None, device: str = "auto") -> dict:
    """The paired comparison of two run directories on `which` (see the module docstring): from the users' ranks a
    finished run keeps (ranks.npz), else from its best checkpoint. exclude_history None: the runs' own setting,
    which must then agree."""
    from genpas.train.recommend import run_config

    if which not in SPLITS:
        raise GenpasError(f"--split must be valid or test, got {which!r}")
    _, k = parse_metric(metric)
    check_options(resamples, seed)
    runs = (Path(run_a), Path(run_b))
    cfgs = [run_config(run, option) for run, option in zip(runs, ("--run", "--baseline"))]
    for run, cfg in zip(runs, cfgs):
        if cfg.model == "tiger" and k > cfg.beam:  # items past TIGER's beam all score -inf: its metric stops there
            raise GenpasError(f"{run}: TIGER ranks only its beam of {cfg.beam} items, so {metric} is not comparable; "
                              f"use K <= {cfg.beam}")
    if exclude_history is None:
        if cfgs[0].exclude_history != cfgs[1].exclude_history:
            raise GenpasError(f"{run_a} ranks {'without' if cfgs[0].exclude_history else 'with'} the user's history "
                              f"and {run_b} {'without' if cfgs[1].exclude_history else 'with'}: give "
                              "--exclude-history or --keep-history")
        exclude_history = cfgs[0].exclude_history
    sides = [_stored(run, which, exclude_history) or _from_model(run, option, which, exclude_history, device)
             for run, option in zip(runs, ("--run", "--baseline"))]
    if sides[0][1] != sides[1][1] or len(sides[0][0]) != len(sides[1][0]):
        raise GenpasError(f"{run_a} and {run_b} were trained on different data (their events, ids or order differ): "
                          "users can be paired only on the same data")
    values = [user_metric(ranks, metric) for ranks, _, _ in sides]
    return {"run": str(run_a), "baseline": str(run_b), "split": which, "metric": metric,
            "exclude_history": bool(exclude_history), "ranks_from": [source for _, _, source in sides],
            **paired_difference(*values, resamples=resamples, seed=seed)}


def _stored(run: Path, which: str, exclude_history: bool) -> tuple[np.ndarray, str, str] | None:
    """(ranks, data fingerprint, "ranks.npz") of a finished run that keeps the ranks asked for, else None."""
    from genpas.train.ranks import FILE, finished_metrics, load_ranks, metrics_name, mismatch, ranks_key, read_ranks

    finished = finished_metrics(run)
    if finished is None:
        return None  # not finished (or its metrics.json is another command's business): the checkpoint decides
    metrics, data, run_excludes = finished
    # A run finished before metrics.json named its data: the ranks' own fingerprint stands for it.
    ranks = read_ranks(run, data).get(ranks_key(which, exclude_history))
    if ranks is None:
        return None
    data = data or load_ranks(run)[0]
    reported = metrics.get(metrics_name(which, exclude_history, run_excludes) or "", {})
    users = reported.get("users") if isinstance(reported, dict) else None
    if users is not None and users != len(ranks):
        raise GenpasError(f"{run / FILE} holds {len(ranks)} {which} ranks, its metrics.json {users} users: delete "
                          f"it, or write it again with `genpas evaluate --run {run}`")
    if isinstance(reported, dict) and (wrong := mismatch(ranks, reported)) is not None:  # another run's ranks
        raise GenpasError(f"{run / FILE} is not this run's: its {which} ranks give {wrong}; delete it, or write it "
                          f"again with `genpas evaluate --run {run}`")
    return ranks, data, FILE


def _from_model(run: Path, option: str, which: str, exclude_history: bool, device: str
                ) -> tuple[np.ndarray, str, str]:
    """(ranks, data fingerprint, "best.safetensors"): the run's best checkpoint ranks the users now."""
    from genpas.train.build import build_model, load_split, pick_device
    from genpas.train.evaluate import user_ranks

    cfg = best_config(run, option)
    split = _split(run, cfg, load_split)
    target = pick_device(device)
    model, _ = build_model(cfg, split, run / "best.safetensors")  # TIGER: with the ids it trained with
    ranks = user_ranks(model.to(target), split, which, cfg.max_len, target, exclude_history, cfg.eval_batch_size)
    return ranks, split.full.fingerprint(), "best.safetensors"


def best_config(run: Path, option: str = "--run"):
    """The run's TrainConfig, refused unless the run holds a best checkpoint to rank with."""
    from genpas.train.recommend import run_config

    cfg = run_config(run, option)
    if cfg.model != "pop" and not (Path(run) / "best.safetensors").is_file():
        raise GenpasError(f"{run}: no best.safetensors, and no ranks.npz with the ranks asked for; give a run "
                          "directory that has trained at least one epoch")
    return cfg


def _split(run: Path, cfg, load_split):
    try:
        return load_split(cfg)
    except GenpasError as exc:
        raise GenpasError(f"the data of {run} ({run / 'config.yaml'}: data: {cfg.data}) cannot be loaded: {exc}") \
            from None
