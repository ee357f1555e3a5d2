"""The paper's experiments as reproducible jobs (spec sections 7 and 10, issue 7).

    strategies        LT, MT, SW and the searched GenPAS setting (plus popularity) over several seeds: the headline
                      comparison, with mean, spread and a verdict of GenPAS against MT relative to the seed spread
    long-tail         the same runs, metrics by target-item popularity third
    data-efficiency   GenPAS against MT trained on a fixed set of pairs drawn once: 1%, 5%, 10%, 20%, 100% of the MT
                      pair count, at equal compute (every epoch keeps the MT size and cycles through the set)
    model-size        GenPAS against MT over embedding widths and depths
    screening         a KL-stratified sample of the grid, trained: does the screening predict training?
                      (screening_study.py)

Every experiment in one directory shares a run store (run_store.py): each training is keyed by its full configuration,
kept in its own resumable run directory (DIR/runs/<name>-<hash>/) and recorded in DIR/ledger.jsonl once finished;
a search given the same directory shares it too. So the long-tail
table reuses the headline runs, the 64-wide model of model-size reuses the headline's seed-0 runs, and a killed
experiment continues where it stopped. Runs are bounded by epochs (not wall time), so their results do not depend on
the machine's load: same seed, same data, same numbers.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from genpas.atomic import write_text
from genpas.augment import make_strategy
from genpas.augment.strategy import NO_BIASES
from genpas.errors import GenpasError
from genpas.search.compare import DEFAULT_GENPAS
from genpas.search.quality_steps import quality_steps
from genpas.search.run_store import (  # noqa: F401 (re-exported)
    HSTU_ONLY,
    METRICS,
    NOT_IN_KEY,
    TIGER_ONLY,
    Ledger,
    RunStore,
    ended_by,
    run_key,
    seconds_with_evaluation,
    stand_in,
    validation_curve,
)
from genpas.train.config import TrainConfig
from genpas.train.loss import COMPUTE_KEYS
from genpas.train.metrics import GROUP_NAMES
from genpas.train.paired import paired_ranks
from genpas.train.ranks import load_ranks, ranks_key
from genpas.train.trainer import load_split

log = logging.getLogger(__name__)

EXPERIMENTS = ("strategies", "long-tail", "data-efficiency", "model-size", "screening")
FRACTIONS = (0.01, 0.05, 0.1, 0.2, 1.0)


def compute_summary(records: list[dict]) -> dict:
    """Mean over seeds of the compute keys, for the whole run and up to its best epoch."""
    out = {k: spread([r.get(k, 0) for r in records]) for k in COMPUTE_KEYS}
    out["at_best"] = {k: spread([r.get("compute_at_best", {}).get(k, 0) for r in records]) for k in COMPUTE_KEYS}
    return out


def per_seed(record: dict) -> dict:
    """One run as the JSON contract has it: seed, valid and test metric objects (each saying whether the user's
    history was excluded from the ranking), compute and device, and which run of the store it is: its name, its
    epochs and epoch cap (a run that patience ended under a lower cap stands for a higher one: continuation.py),
    and the capped run it continued, if any."""
    def slim(metrics):
        return {k: metrics[k] for k in (*METRICS, "users", "exclude_history") if k in metrics}

    kept = {k: slim(record[k]) for k in ("valid_history_kept", "test_history_kept") if k in record}
    return {"seed": record["config"]["seed"], "valid": slim(record["valid"]), "test": slim(record["test"]), **kept,
            "best_epoch": record["best_epoch"], "stopped_by": ended_by(record),
            **{k: record.get(k, 0) for k in COMPUTE_KEYS},
            "train_seconds": record["train_seconds"], "device": record.get("device", "unknown"),
            **({"precision": record["precision"]} if record.get("precision") else {}),
            "run": record["name"], "epochs_run": record.get("epochs_run"), "epoch_cap": record["config"].get("epochs"),
            **({"continued_from": record["continued_from"]} if "continued_from" in record else {})}


def strategy_overrides(name: str, genpas=DEFAULT_GENPAS) -> dict:
    if name == "pop":
        return dict(model="pop", strategy="mt", negatives=0, **NO_BIASES)  # popularity has no softmax to sample
    if name == "genpas":
        return dict(strategy="genpas", alpha=genpas[0], beta=genpas[1], gamma=genpas[2])
    return dict(strategy=name, **NO_BIASES)  # a preset drops the biases of a base config of genpas


def label_of(name: str, genpas=DEFAULT_GENPAS) -> str:
    if name == "pop":
        return "Popularity"
    o = strategy_overrides(name, genpas)
    return make_strategy(o["strategy"], o.get("alpha"), o.get("beta"), o.get("gamma")).label


def spread(values) -> dict:
    """Mean, sample standard deviation (0 for one value) and the values themselves."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "values": [float(x) for x in v]}


MIN_SEEDS = 3  # a verdict needs at least this many seeds (spec section 12)


def paired_verdict(genpas_values, mt_values) -> dict:
    """GenPAS against MT over the same seeds: mean paired difference, its standard error, and a verdict.

    win / loss when the mean difference is more than two standard errors of the paired differences away from zero,
    tie otherwise. With one seed there is no spread ('single seed'); with fewer than MIN_SEEDS the standard error is
    given but no verdict ('too few seeds'): from two seeds it has one degree of freedom, and two such standard
    errors are crossed by chance about 3 times in 10 (Student's t with 1 degree of freedom).
    """
    if len(genpas_values) != len(mt_values):  # paired by seed: never broadcast one list over the other
        raise ValueError(f"paired by seed, yet {len(genpas_values)} values against {len(mt_values)}")
    d = np.asarray(genpas_values, dtype=np.float64) - np.asarray(mt_values, dtype=np.float64)
    mean = float(d.mean())
    if len(d) < 2:
        return {"mean_difference": mean, "standard_error": None, "relative": None, "verdict": "single seed"}
    se = float(d.std(ddof=1) / math.sqrt(len(d)))
    verdict = ("too few seeds" if len(d) < MIN_SEEDS else
               "win" if mean > 2 * se else "loss" if mean < -2 * se else "tie")
    mt_mean = float(np.mean(mt_values))
    return {"mean_difference": mean, "standard_error": se, "relative": mean / mt_mean if mt_mean else None,
            "verdict": verdict, "seeds": len(d), "chance_beyond_two_se": chance_beyond(2.0, len(d) - 1)}


def chance_beyond(t: float, df: int) -> float:
    """P(|T| > t) for Student's T with `df` degrees of freedom: how often a paired difference over df + 1 seeds lands
    beyond t standard errors where the two arms do not differ (about 0.18 for t = 2 and 3 seeds, 0.05 near 60)."""
    x = np.linspace(0.0, t, 20_001)
    density = np.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
                     - (df + 1) / 2 * np.log1p(x * x / df))
    return float(1.0 - (density[1:] + density[:-1]).sum() * (x[1] - x[0]))  # twice the trapezoid integral over [0, t]


@dataclass
class ExperimentSettings:
    base: TrainConfig
    seeds: tuple[int, ...] = (0, 1, 2)
    genpas: tuple[float, float, float] = DEFAULT_GENPAS
    command: str | None = None  # the command line that ran the experiment, written into its JSON

    def config(self, name: str, seed: int, **changes) -> TrainConfig:
        return replace(self.base, seed=seed, **strategy_overrides(name, self.genpas), **changes)

    def header(self, experiment: str, started: float, runs: list[dict]) -> dict:
        return {"experiment": experiment, "data": self.base.data, "seeds": list(self.seeds),
                "genpas": list(self.genpas), "command": self.command, "config": self.base.to_dict(),
                "wall_seconds": time.perf_counter() - started,
                "train_seconds_of_runs": float(sum(r["train_seconds"] for r in runs)),
                **_seconds_with_evaluation(runs),
                # every run's device and resolved precision, for the report's provenance of any experiment
                "run_devices": [r.get("device", "unknown") for r in runs],
                "run_precisions": [r.get("precision") for r in runs]}


def _seconds_with_evaluation(runs: list[dict]) -> dict:
    """Training plus evaluation seconds of the runs (None when some run's is unknown, counted beside it)."""
    each = [seconds_with_evaluation(r) for r in runs]
    unknown = sum(x is None for x in each)
    return {"wall_seconds_of_runs": None if unknown else float(sum(each)), "runs_without_eval_seconds": unknown}


# ------------------------------------------------------------------------------------------------------------------
def run_strategies(settings: ExperimentSettings, store: RunStore, names=("pop", "lt", "mt", "sw", "genpas")) -> dict:
    """Each strategy once per seed; mean and spread of every metric; GenPAS against MT."""
    started = time.perf_counter()
    rows, runs, records_of = {}, [], {}
    for name in names:
        records = records_of[name] = [store.get(settings.config(name, s), name) for s in settings.seeds]
        runs += records
        rows[name] = {"label": label_of(name, settings.genpas),
                      "valid": {k: spread([r["valid"][k] for r in records]) for k in METRICS},
                      "test": {k: spread([r["test"][k] for r in records]) for k in METRICS},
                      **({"test_history_kept": {k: spread([r["test_history_kept"][k] for r in records])
                                                for k in METRICS}}
                         if all("test_history_kept" in r for r in records) else {}),
                      "best_epoch": [r["best_epoch"] for r in records],
                      "stopped_by": [ended_by(r) for r in records],
                      "train_seconds": spread([r["train_seconds"] for r in records]),
                      "compute": compute_summary(records),
                      "curves": [r.get("curve", []) for r in records],
                      "runs": [per_seed(r) for r in records]}
    result = settings.header("strategies", started, runs) | {"strategies": rows}
    if "genpas" in rows:  # GenPAS against every baseline trained on the same seeds (paired differences)
        result["genpas_vs"] = {
            base: {split: {k: paired_verdict(rows["genpas"][split][k]["values"], rows[base][split][k]["values"])
                           for k in ("ndcg@10", "recall@10")} for split in ("valid", "test")}
            for base in ("mt", "sw", "lt") if base in rows}
        if "mt" in result["genpas_vs"]:
            result["genpas_vs_mt"] = result["genpas_vs"]["mt"]
        result["genpas_vs_by_user"] = {
            base: by_user(store.root, records_of["genpas"], records_of[base], settings.base.exclude_history)
            for base in result["genpas_vs"]}
        result["genpas_quality_steps"] = {  # how fast GenPAS reaches each baseline's quality (quality_steps.py)
            base: quality_steps(rows["genpas"]["curves"], rows[base]["curves"], list(settings.seeds))
            for base in result["genpas_vs"]}
    return result


def by_user(root: Path, records: list[dict], baselines: list[dict], exclude_history: bool) -> list[dict | None]:
    """Seed by seed, GenPAS minus the baseline over the same test users (NDCG@10 and Recall@10): the mean, which is
    the difference of the two runs' metrics, and its standard error over the users, from the ranks the runs keep
    (ROOT/runs/<name>/ranks.npz); the same over the validation users under "valid" where both runs keep those ranks.
    It measures how much the choice of evaluated users moves one seed's difference; the seeds' spread (genpas_vs) is
    the other half of a win. None for a seed where a run keeps no test ranks (finished before runs kept them:
    `genpas evaluate --run` adds them); ranks of different data or users are an error."""
    out = []
    for a, b in zip(records, baselines):
        runs = [root / "runs" / r["name"] for r in (a, b)]
        loaded = [load_ranks(run) for run in runs]

        def ranks_of(split):
            return [arrays.get(ranks_key(split, r["config"].get("exclude_history", exclude_history)))
                    for (_, arrays), r in zip(loaded, (a, b))]

        ranks, valid = ranks_of("test"), ranks_of("valid")
        if any(r is None for r in ranks):
            out.append(None)
            continue
        data = {stored for stored, _ in loaded} | {r["data_sha256"] for r in (a, b) if r.get("data_sha256")}
        has_valid = all(r is not None for r in valid)
        if len(data) > 1 or len(ranks[0]) != len(ranks[1]) or (has_valid and len(valid[0]) != len(valid[1])):
            raise GenpasError(f"{runs[0]} and {runs[1]} keep ranks of different data or users, so the seed's users "
                              "cannot be paired: train them on the same data, or delete the stale ranks.npz")
        seed = {"seed": a["config"]["seed"], "users": int(len(ranks[0]))}
        seed |= {metric: paired_ranks(*ranks, metric) for metric in ("ndcg@10", "recall@10")}
        if has_valid:
            seed["valid"] = {"users": int(len(valid[0]))} | {metric: paired_ranks(*valid, metric)
                                                              for metric in ("ndcg@10", "recall@10")}
        out.append(seed)
    return out


def run_long_tail(settings: ExperimentSettings, store: RunStore, names=("lt", "mt", "genpas")) -> dict:
    """Test metrics by popularity third of the target item (tail, middle, head), mean over seeds."""
    started = time.perf_counter()
    rows, runs, records_of = {}, [], {}
    for name in names:
        records = records_of[name] = [store.get(settings.config(name, s), name) for s in settings.seeds]
        runs += records
        rows[name] = {"label": label_of(name, settings.genpas), "groups": {
            g: {"users": records[0]["test"]["groups"][g]["users"],
                **{k: spread([r["test"]["groups"][g][k] for r in records]) for k in METRICS}}
            for g in GROUP_NAMES}}
    return settings.header("long-tail", started, runs) | {"strategies": rows}


def run_data_efficiency(settings: ExperimentSettings, store: RunStore, fractions=FRACTIONS,
                        names=("mt", "genpas")) -> dict:
    """Train on a fixed set of `fraction` x the MT pair count, drawn once, for each strategy and seed. Epochs keep
    the MT size (they cycle through the set), so every fraction gets the same compute and only the data shrinks. The
    set is B sampled triples (u, k, j) in either mode; packed runs group exactly those triples into windows."""
    started = time.perf_counter()
    if store.split is None:
        store.split = load_split(settings.base)
    mt_pairs = int(np.maximum(store.split.train.lengths - 1, 0).sum())
    rows, runs = [], []
    for fraction in fractions:
        pairs = max(1, int(round(fraction * mt_pairs)))
        row = {"fraction": fraction, "num_pairs": pairs}
        for name in names:
            records = [store.get(settings.config(name, s, budget_pairs=pairs), name)
                       for s in settings.seeds]
            runs += records
            row[name] = {"valid": {k: spread([r["valid"][k] for r in records]) for k in METRICS},
                         "test": {k: spread([r["test"][k] for r in records]) for k in METRICS},
                         "best_epoch": [r["best_epoch"] for r in records],
                         "compute": compute_summary(records)}
        rows.append(row)
    return settings.header("data-efficiency", started, runs) | {
        "mt_pair_count": mt_pairs, "labels": {n: label_of(n, settings.genpas) for n in names}, "rows": rows}


def run_model_size(settings: ExperimentSettings, store: RunStore, sizes, names=("mt", "genpas")) -> dict:
    """Each (embedding width, layers) in `sizes` for each strategy and seed."""
    started = time.perf_counter()
    rows, runs = [], []
    for dim, layers in sizes:
        row = {"dim": dim, "layers": layers}
        for name in names:
            records = [store.get(settings.config(name, s, dim=dim, layers=layers), name) for s in settings.seeds]
            runs += records
            row[name] = {"valid": {k: spread([r["valid"][k] for r in records]) for k in METRICS},
                         "test": {k: spread([r["test"][k] for r in records]) for k in METRICS},
                         "train_seconds": spread([r["train_seconds"] for r in records])}
        rows.append(row)
    return settings.header("model-size", started, runs) | {
        "labels": {n: label_of(n, settings.genpas) for n in names}, "rows": rows}


def default_sizes(dims=(32, 64, 128, 256), depths=(1, 2, 4), reference=(64, 2)) -> list[tuple[int, int]]:
    """One factor at a time around the reference model: every width at its depth, every depth at its width."""
    sizes = [(d, reference[1]) for d in dims] + [(reference[0], n) for n in depths]
    return list(dict.fromkeys(sizes))  # ordered, without the reference twice


def result_name(result: dict) -> str:
    """The file stem of an experiment's results: its name, plus the model where it is not SASRec (strategies-hstu),
    so that experiments of several models share one run store without overwriting each other's tables."""
    model = result.get("config", {}).get("model", "sasrec")
    return result["experiment"] if model == "sasrec" else f"{result['experiment']}-{model}"


# What a rerun over finished runs may change without changing its result: the command's own time and words. The
# options that never change a run (run_store.NOT_IN_KEY) are left out of the comparison too (_lasting).
VOLATILE = ("command", "wall_seconds")


def _lasting(result) -> dict | None:
    """What of a result a rerun over the same finished runs must reproduce (None: not a result)."""
    if not isinstance(result, dict) or not isinstance(result.get("config"), dict):
        return None
    return {**{k: v for k, v in result.items() if k not in VOLATILE},
            "config": {k: v for k, v in result["config"].items() if k not in NOT_IN_KEY}}


def _unchanged(result: dict, path: Path) -> dict | None:
    """The result already at `path` when it differs from `result` only in VOLATILE fields, else None. Both sides
    are compared as JSON reads them (tuples as lists; a NaN, which equals nothing, makes the results differ)."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    kept = _lasting(old)
    return old if kept is not None and kept == _lasting(json.loads(json.dumps(result))) else None


def save(result: dict, out: Path) -> tuple[Path, list[Path]]:
    """DIR/<experiment>[-<model>].json, .md and .png (see experiment_report.py); returns the JSON's path and the
    files written.

    A rerun whose result differs from the file's only in VOLATILE fields (every run finished before) keeps the file's
    result and writes only what is missing or out of date beside it: the report when its text differs (the report's
    wording changed), and the plots when they are missing or the report was rewritten. The JSON is written last, so
    a save cut short leaves the old JSON, and the next save writes everything again."""
    from genpas.search.experiment_plots import curves_plot, experiment_plot
    from genpas.search.experiment_report import experiment_markdown

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = result_name(result)
    path, md = out / f"{name}.json", out / f"{name}.md"
    old = _unchanged(result, path)
    if old is not None:
        result = old
    markdown = experiment_markdown(result, f"{name}.png")
    written = []
    if old is None or not md.is_file() or md.read_text() != markdown:
        write_text(md, markdown)
        written.append(md)
    plots = [(experiment_plot, out / f"{name}.png")]
    if result["experiment"] == "strategies":
        plots.append((curves_plot, out / f"{name}-curves.png"))
    for draw, target in plots:
        if old is None or md in written or not target.is_file():
            draw(result, target)
            written.append(target)
    if old is None:
        write_text(path, json.dumps(result, indent=2) + "\n")
        written.insert(0, path)
    return path, written
