"""Train the same model under several strategies and compare them: the main job (`genpas run`) and its API twin.

The default line-up is the popularity floor, the three classic augmentations (LT, MT, SW, all exact) and one GenPAS
setting, DEFAULT_GENPAS, documented in docs/method.md. Each strategy trains under the same configuration and
wall-clock budget; results go to OUT/results.json, OUT/results.md and OUT/results.png, and each run keeps its own
directory (OUT/<name>/) with config, checkpoints and logs, so a killed job resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from genpas.atomic import write_text
from genpas.augment import make_strategy
from genpas.augment.strategy import NO_BIASES
from genpas.errors import GenpasError
from genpas.train.config import TrainConfig, same_config
from genpas.train.run_dir import trained_on
from genpas.train.trainer import load_split, train_owned

log = logging.getLogger(__name__)

DEFAULT_GENPAS = (0.5, 0.0, 0.0)  # alpha, beta, gamma: see docs/method.md "The default GenPAS setting"

LINEUP = {
    # a preset drops the biases of a base config of genpas (NO_BIASES); popularity has no softmax to sample
    "pop": dict(model="pop", strategy="mt", negatives=0, **NO_BIASES),
    "lt": dict(strategy="lt", **NO_BIASES),
    "mt": dict(strategy="mt", **NO_BIASES),
    "sw": dict(strategy="sw", **NO_BIASES),
    "genpas": dict(strategy="genpas", alpha=DEFAULT_GENPAS[0], beta=DEFAULT_GENPAS[1], gamma=DEFAULT_GENPAS[2]),
}


def compare(base: TrainConfig, out: Path, names=tuple(LINEUP), resume: bool = True, on_result=None) -> dict:
    """Train `base` once per strategy in `names`; returns {label: metrics}. A finished run is reused when its
    configuration and data are the same (resume=False: every run trains again from scratch)."""
    if base.model not in ("sasrec", "hstu"):
        raise GenpasError(f"the main job compares augmentations of SASRec or HSTU, not --model {base.model}; train "
                          "TIGER with `genpas experiment strategies --model tiger`")
    out = Path(out)
    configs = {}
    for name in names:  # every one checked before the first trains
        try:
            configs[name] = replace(base, **LINEUP[name])
        except GenpasError as exc:
            raise GenpasError(f"--strategies {name}: {exc}") from None
    split = load_split(base)
    data = split.full.fingerprint()
    results, labels = {}, {}
    for name, cfg in configs.items():
        run_dir = out / name
        metrics = _finished(run_dir / "metrics.json") if resume else None
        same_data = metrics is not None and trained_on(metrics, data)
        if not same_data or not same_config(metrics["config"], cfg):
            metrics = train_owned(cfg, run_dir, split=split, fresh=not resume)
        label = "Popularity" if cfg.model == "pop" else make_strategy(cfg.strategy, cfg.alpha, cfg.beta, cfg.gamma).label
        results[label], labels[name] = metrics, label
        if on_result is not None:
            on_result(label, metrics)
    write_report(results, out, base, genpas_by_user(out, labels, results, base.exclude_history),
                 genpas_quality(out, labels, base.seed))
    return results


def genpas_quality(out: Path, labels: dict, seed: int) -> dict:
    """GenPAS's optimizer steps to every other trained strategy's quality (search/quality_steps.py), from the runs'
    log.csv: {label: quality_steps of the one seed}. A run whose log cannot be read is left out with a warning."""
    from genpas.search.quality_steps import quality_steps
    from genpas.search.run_logs import validation_curve

    curves = {}
    for name in labels:
        try:
            curves[name] = validation_curve(out / name / "log.csv")
        except GenpasError as exc:
            log.warning("%s; it is left out of the steps to quality", exc)
    if not curves.get("genpas"):
        return {}
    return {labels[name]: quality_steps([curves["genpas"]], [curve], [seed])
            for name, curve in curves.items() if name != "genpas" and curve}


def quality_lines(quality: dict) -> list[str]:
    """One line per baseline: the optimizer steps GenPAS and it took to the baseline's quality (one seed)."""
    from genpas.search.quality_steps import quality_sentence

    return [quality_sentence(found, label) for label, found in quality.items()]


def genpas_by_user(out: Path, labels: dict, results: dict, exclude_history: bool) -> dict:
    """GenPAS minus every other strategy of the job over the same test users (NDCG@10), from the runs' ranks.npz
    (train/ranks.py): {label: difference, standard error over the users, z, users each side serves better}. One seed,
    so it measures how far the choice of test users moves the difference, not the seeds' spread. A run without
    readable ranks is left out with a warning naming it."""
    from genpas.train.paired import paired_ranks
    from genpas.train.ranks import ranks_key, read_ranks

    key, ranks = ranks_key("test", exclude_history), {}
    for name, label in labels.items():
        try:
            ranks[name] = read_ranks(out / name, results[label].get("data_sha256")).get(key)
        except GenpasError as exc:
            log.warning("%s; its user-by-user comparison is left out", exc)
            continue
        if ranks[name] is None and "genpas" in labels:
            log.warning("%s keeps no test ranks (it finished before runs kept them; `genpas evaluate --run %s` adds "
                        "them), so it is left out of the user-by-user comparison", out / name, out / name)
    if ranks.get("genpas") is None:
        return {}
    paired = {}
    for name, theirs in ranks.items():
        if name != "genpas" and theirs is not None and len(theirs) == len(ranks["genpas"]):
            paired[labels[name]] = paired_ranks(ranks["genpas"], theirs, "ndcg@10")
    return paired


def by_user_lines(paired: dict, genpas: str = "GenPAS") -> list[str]:
    """One line per baseline: test NDCG@10 of GenPAS minus it over the same users, and whether it is beyond two
    standard errors of the users."""
    from genpas.train.paired import verdict

    return [f"{genpas} - {label}: test NDCG@10 {d['difference']:+.4f} ± {d['standard_error']:.4f} over the same users "
            f"({verdict(d['difference'], d['standard_error'], genpas, label)}; users better served "
            f"{d['a_better']} / {d['b_better']})" for label, d in paired.items()]


def _finished(path: Path) -> dict | None:
    """A finished run's metrics.json, or None where there is none or it is damaged (the run then trains again)."""
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return metrics if isinstance(metrics, dict) and isinstance(metrics.get("config"), dict) else None


def write_report(results: dict, out: Path, base: TrainConfig, by_user: dict | None = None,
                 quality: dict | None = None) -> None:
    from genpas.search.report import bar_chart, markdown_table

    out.mkdir(parents=True, exist_ok=True)
    slim = {label: {k: m[k] for k in ("valid", "test", "best_epoch", "epochs_run", "train_seconds", "strategy")}
            for label, m in results.items()}
    write_text(out / "results.json", json.dumps({"data": base.data, "config": base.to_dict(), "results": slim,
                                                 "genpas_vs_by_user": by_user or {},
                                                 "genpas_quality_steps": quality or {}}, indent=2) + "\n")
    genpas = next((label for label in results if label.startswith("GenPAS")), "GenPAS")
    paired = "".join(f"- {line}\n" for line in by_user_lines(by_user or {}, genpas))
    note = ("\nOne seed: each line says how far the choice of test users alone moves the difference (its standard "
            "error over the users); the seeds' spread is measured by `genpas experiment strategies`.\n\n" + paired
            if paired else "")
    speed = "".join(f"- {line}\n" for line in quality_lines(quality or {}))
    if speed:
        note += speed if note else "\n" + speed
    write_text(out / "results.md", markdown_table(results, title=f"Strategies on {base.data}", config=base) + note)
    model = {"sasrec": "SASRec", "hstu": "HSTU"}.get(base.model, base.model)
    bar_chart(results, out / "results.png", title=f"{model} on {base.data}: test metrics by augmentation strategy")

