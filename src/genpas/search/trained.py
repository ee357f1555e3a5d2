"""The parameter search (spec section 7): screen without training, train the top K and the baselines, pick by
validation NDCG@10, report test.

Its trainings live in the run store of DIR (run_store.py): each is keyed by its full configuration, appended to
DIR/ledger.jsonl once finished and kept in its own resumable run directory, so a killed search continues where it
stopped, and a search and the experiments given the same directory reuse each other's runs (the baselines LT, MT and
SW of the search are the experiments' runs of its seed when the options agree). Several processes (on one machine,
or on several that see the directory with working file locks) may run the same search: each trains the jobs no
other process holds, then waits for the others and resumes any whose process died, so k processes finish the
trainings up to k times sooner, and every one picks the same setting. Runs of different options have different keys,
so processes given different options never touch each other's runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np

from genpas.atomic import write_text
from genpas.augment import make_strategy
from genpas.augment.strategy import NO_BIASES, bias_text
from genpas.errors import GenpasError
from genpas.search import screening_cache
from genpas.search.pruning import MARGIN, Prune, apart
from genpas.search.run_logs import run_progress
from genpas.search.run_store import RunStore, ended_by, run_name, work_through
from genpas.search.screening import default_grid, screen, spearman
from genpas.search.screening_cache import json_safe
from genpas.train.config import TrainConfig, same_config
from genpas.train.run_dir import RunBusy, exclusive, held_elsewhere
from genpas.train.trainer import PROTOCOL, load_split

log = logging.getLogger(__name__)
BASELINES = ("lt", "mt", "sw")
METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def _slim(metrics: dict) -> dict:
    return {k: metrics[k] for k in METRICS}


def _name(alpha, beta, gamma) -> str:
    return f"genpas_{bias_text(alpha)}_{bias_text(beta)}_{bias_text(gamma)}"


DATA_KEYS = ("data", "format", "user_col", "item_col", "time_col", "min_user_count", "min_item_count")


SCREENING_VERSION = 1  # raise when the screening's formulas change: cached screenings of the old ones are not reused


def _fingerprint(split) -> str:
    """SHA-256 of the split's sequences (every user's items, and which users are evaluated): a log edited in place
    under the same name and counts gets a screening of its own. One pass over the arrays: milliseconds for ML-1M."""
    digest = hashlib.sha256()
    for array in (split.full.offsets, split.full.items, split.train.offsets, split.eval_users):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _screened(split, base: TrainConfig, out: Path, keep_fraction: float, samples: int, seed: int,
              save: bool = True) -> tuple[list[dict], float]:
    """(screened rows, seconds the screening took), read from the search's screening cache when it holds them
    (screening_cache.py); `save` False (a plan) writes nothing."""
    grid = default_grid()
    facts = {"data": {k: getattr(base, k) for k in DATA_KEYS}, "max_len": base.max_len,
             "keep_fraction": keep_fraction, "samples": samples, "seed": seed,
             "grid": json_safe([list(g) for g in grid]), "train_users": int(len(split.train.lengths)),
             "train_events": int(split.train.lengths.sum()), "items": int(split.full.num_items),
             "train_sha256": _fingerprint(split), "screening": SCREENING_VERSION}
    path = screening_cache.cache_path(out, facts)
    cached = screening_cache.read(path, facts, grid)
    if cached is not None or not save:
        return cached or _screen(split, base, keep_fraction, samples, seed)
    # Processes that start a search together screen once: the others wait for the first one's cache.
    lock = path.with_name(f".{path.stem}.lock")
    with ExitStack() as held:
        try:
            held.enter_context(exclusive(lock, "busy"))
        except RunBusy:
            log.warning("waiting for another process's screening of this data (%s)", path)
            held.enter_context(exclusive(lock, "busy", wait=True))
        return _screen_into(path, facts, grid, split, base, keep_fraction, samples, seed)


def _screen_into(path: Path, facts: dict, grid, split, base: TrainConfig, keep_fraction: float, samples: int,
                 seed: int) -> tuple[list[dict], float]:
    """The cache's screening if another process wrote it meanwhile, else a new one, written there."""
    cached = screening_cache.read(path, facts, grid)
    if cached is not None:
        return cached
    rows, seconds = _screen(split, base, keep_fraction, samples, seed)
    screening_cache.write(path, facts, rows, seconds)
    return rows, seconds


def _screen(split, base: TrainConfig, keep_fraction: float, samples: int, seed: int) -> tuple[list[dict], float]:
    start = time.perf_counter()
    rows = screen(split, keep_fraction=keep_fraction, max_len=base.max_len, samples=samples, seed=seed)
    return rows, time.perf_counter() - start


def _jobs(base: TrainConfig, split, out: Path, top_k: int, seed: int, budget_minutes: float | None,
          keep_fraction: float, samples: int, save: bool = True) -> tuple[list, list, list, float]:
    """(screened rows, the top-k candidates, [(job name, config)] in training order, screening seconds)."""
    base = replace(base, seed=seed)
    screened, screen_seconds = _screened(split, base, out, keep_fraction, samples, seed, save)
    survivors = [r for r in screened if r["survivor"]]
    candidates = survivors[:top_k]
    if len(candidates) < top_k:
        log.warning("--top-k %d: only %d settings survive the screening (--keep-fraction %g); training those %d",
                    top_k, len(survivors), keep_fraction, len(survivors))
    jobs = [(b, dict(strategy=b, **NO_BIASES)) for b in BASELINES]  # a base config of genpas: its biases dropped
    jobs += [(_name(r["alpha"], r["beta"], r["gamma"]),
              dict(strategy="genpas", alpha=r["alpha"], beta=r["beta"], gamma=r["gamma"])) for r in candidates]
    if budget_minutes is not None:  # share the training budget equally
        base = replace(base, time_budget_minutes=budget_minutes / len(jobs))
    return screened, candidates, [(name, replace(base, **o)) for name, o in jobs], screen_seconds


def plan(base: TrainConfig, out: Path, top_k: int = 10, seed: int = 0, budget_minutes: float | None = None,
         keep_fraction: float = 0.2, samples: int = 8, prune_factor: float | None = None,
         prune_margin: float = MARGIN, prune_baselines: bool = False) -> list[dict]:
    """The trainings the search needs, in its order, each with its run directory, state (campaign.STATES, or
    "pruned" where a search pruning with `prune_factor` and `prune_margin` stopped it; a baseline only with
    `prune_baselines`) and progress (run_store.run_progress). Reads DIR and writes nothing."""
    from genpas.search.campaign import plan_entry

    out, split = Path(out), load_split(base)
    _, _, jobs, _ = _jobs(base, split, out, top_k, seed, budget_minutes, keep_fraction, samples, save=False)
    store, rows = RunStore(out, split=split), []
    prune = None if prune_factor is None else Prune(lambda: _leader(store, jobs), prune_factor, prune_margin)
    for name, cfg in jobs:
        key = run_name(cfg)
        state, run_dir, extra = ("finished", out / "runs" / key, {}) if _legacy(store, name, cfg) is not None \
            else plan_entry(store, cfg, key)
        prunes = prune if prune_baselines or name not in BASELINES else None
        if state in ("started", "pending") and prunes is not None and store.stopped(cfg, key, prunes) is not None:
            state, extra = "pruned", {}
        log_csv = run_dir / ("log.csv" if state != "pending" else ".none")  # pending: no epochs yet
        rows.append({"name": name, "key": key, "state": state, **run_progress(log_csv, cfg)}
                    | ({"epochs_left": 0} if state in ("finished", "pruned") else {}) | extra)
    return rows


def _legacy(store: RunStore, name: str, cfg: TrainConfig) -> dict | None:
    """The record a search finished before searches shared the run store kept under the job's name, if it is `cfg`'s."""
    legacy = store.ledger.done.get(name)
    return legacy if legacy is not None and same_config(legacy["config"], cfg) and legacy.get("protocol") == PROTOCOL \
        else None


def _leader(store: RunStore, jobs: list) -> tuple[str, float] | None:
    """(name, best validation NDCG@10) of the search's best finished training so far, read from the ledger (other
    processes of the search may have finished some meanwhile); None while none has finished."""
    store.ledger.refresh()
    done = [(name, _legacy(store, name, cfg) or store.finished(cfg, run_name(cfg)))
            for name, cfg in jobs]
    scores = [(name, record["valid"]["ndcg@10"]) for name, record in done if record is not None]
    return max(scores, key=lambda pair: pair[1]) if scores else None


def search(base: TrainConfig, out: Path, top_k: int = 10, seed: int = 0, budget_minutes: float | None = None,
           keep_fraction: float = 0.2, samples: int = 8, on_result=None, wait: bool = True,
           prune_factor: float | None = None, prune_margin: float = MARGIN, prune_baselines: bool = False) -> dict:
    """Run (or resume) the search; writes and returns the search.json object. Without `wait`, trainings other
    processes hold are not waited for: LeftToOthers is raised if any are still held once the rest are done. With
    `prune_factor` (and `prune_margin`), GenPAS settings that cannot reach the best finished training are stopped
    early (pruning.py); the baselines train to convergence, as they are what GenPAS is held against, unless
    `prune_baselines` prunes them too (a baseline pruned earlier resumes otherwise)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = replace(base, seed=seed)
    split = load_split(base)
    screened, candidates, jobs, screen_seconds = _jobs(base, split, out, top_k, seed, budget_minutes,
                                                       keep_fraction, samples)
    if budget_minutes is not None:  # as the jobs' (search.json records the base configuration)
        base = replace(base, time_budget_minutes=budget_minutes / len(jobs))
    store = RunStore(out, split=split)
    prune = None if prune_factor is None else Prune(lambda: _leader(store, jobs), prune_factor, prune_margin)
    if prune is not None and not 3 <= base.patience < base.epochs - 1:
        log.warning("--prune stops nothing with patience %d and %d epochs: it needs a window of at least 3 epochs "
                    "(the patience) and epochs beyond it", base.patience, base.epochs)
    finished = {}

    def record(job, wait_now: bool) -> None:  # the pick depends on the records only: every process picks the same
        name, cfg = job
        finished[name] = _record(store, name, cfg, wait=wait_now,
                                 prune=prune if prune_baselines or name not in BASELINES else None)
        if on_result is not None:
            on_result(name, finished[name])

    # Several processes may run one search: each trains the jobs no other process holds (run_store.work_through).
    work_through([(run_name(cfg), (name, cfg)) for name, cfg in jobs], record, wait)

    trained = []
    for r in candidates:
        rec = finished[_name(r["alpha"], r["beta"], r["gamma"])]
        trained.append({"alpha": r["alpha"], "beta": r["beta"], "gamma": r["gamma"], "kl": r["kl"],
                        "ratio": r["ratio"], "valid": _slim(rec["valid"]), "test": _slim(rec["test"]),
                        **_trained_facts(rec)})
    baselines = {b: {"valid": _slim(finished[b]["valid"]), "test": _slim(finished[b]["test"]),
                     **_trained_facts(finished[b])} for b in BASELINES}
    # The pick: the best validation NDCG@10 over the trained GenPAS settings and the baselines (LT and MT are GenPAS
    # settings too); the test figures of the pick are reported whatever they are.
    pool = [dict(t, strategy="genpas") for t in trained]
    for b in BASELINES:
        s = make_strategy(b)
        pool.append({"alpha": s.alpha, "beta": s.beta, "gamma": s.gamma, "strategy": b, **baselines[b]})
    best = max(pool, key=lambda r: r["valid"]["ndcg@10"])  # never a pruned training: its best is below the leader's
    converged = [t for t in trained if "pruned" not in t]
    result = {
        "data": base.data,
        "model": base.model,
        "seed": seed,
        "screened": [{k: r[k] for k in ("alpha", "beta", "gamma", "kl", "ratio", "alignment", "discrimination",
                                        "survivor")} for r in screened],
        "trained": trained,
        "baselines": baselines,
        "best": {k: best[k] for k in ("strategy", "alpha", "beta", "gamma", "valid", "test")},
        # over finished trainings only: a pruned one's figures are those of a run stopped short
        "best_baseline_valid_ndcg@10": max((v["valid"]["ndcg@10"] for v in baselines.values() if "pruned" not in v),
                                           default=None),
        "screening_predicts_training": {
            "spearman_kl_vs_valid_ndcg@10": spearman([t["kl"] for t in converged], [t["valid"]["ndcg@10"] for t in converged]),
            "spearman_ratio_vs_valid_ndcg@10": spearman([t["ratio"] for t in converged],
                                                         [t["valid"]["ndcg@10"] for t in converged]),
            "settings": len(converged),
        },
        "screen_seconds": screen_seconds,
        "prune": None if prune is None else _pruning_facts(prune, jobs, finished) | {"baselines": prune_baselines},
        "config": base.to_dict(),
    }
    write_text(out / "search.json", json.dumps(json_safe(result), indent=2) + "\n")
    return result


def _pruning_facts(prune: Prune, jobs: list, finished: dict) -> dict:
    """The rule, the pruned trainings in job order, and the epochs the epoch cap still left them in all (what the
    pruning saved at most: patience might have ended them sooner)."""
    pruned = [(name, cfg) for name, cfg in jobs if finished[name].get("pruned")]
    return {"factor": prune.factor, "margin": prune.margin, "pruned": [name for name, _ in pruned],
            "epochs_left_at_most": sum(cfg.epochs - finished[name]["epochs_run"] for name, cfg in pruned)}


def _record(store: RunStore, name: str, cfg: TrainConfig, wait: bool, prune: Prune | None = None) -> dict:
    """The record of one search training, from the run store (trained, resumed or read back; RunBusy when another
    process trains it and `wait` is False). A search finished before searches shared the run store recorded its
    trainings under the job's name: such a record of the same configuration is read back, never retrained."""
    legacy = _legacy(store, name, cfg)
    if legacy is not None:
        return legacy
    _adopt(store, name, cfg)
    return store.get(cfg, cfg.strategy, wait=wait, prune=prune)


def _adopt(store: RunStore, name: str, cfg: TrainConfig) -> None:
    """Move a training that such a search left unfinished in DIR/runs/<job name> to its run-store directory, under
    its claim and only when no process trains there, so it resumes instead of starting over."""
    old, new = store.root / "runs" / name, store.root / "runs" / run_name(cfg)
    if not (old / "last.pt").exists() or new.exists() or held_elsewhere(old / ".lock"):
        return
    try:
        with store.claim(new.name):
            if not new.exists() and same_config(TrainConfig.from_run(old / "config.yaml").to_dict(), cfg):
                old.rename(new)
                log.info("resuming %s (left by an earlier search) as %s", old, new)
    except (RunBusy, GenpasError):  # another process has it, or its config is unreadable: trained afresh
        return


def _trained_facts(record: dict) -> dict:
    """How far a training went: its best epoch, epochs, why it ended, optimizer steps and seconds (a search bounded by
    --time-budget gives each candidate wall-clock seconds, so its epochs depend on the machine's load)."""
    return {"best_epoch": record["best_epoch"], "epochs_run": record.get("epochs_run"),
            "valid_ndcg@10_level": level(record.get("curve") or []),
            "stopped_by": ended_by(record) if "epochs_run" in record else None,
            "optimizer_steps": record.get("optimizer_steps"), "train_seconds": record["train_seconds"]} | (
                {"pruned": record["pruned"]} if "pruned" in record else {})


LEVEL_EPOCHS = 5


def level(curve: list) -> float | None:
    """The best mean of LEVEL_EPOCHS consecutive validation NDCG@10 scores of a run's curve ([[steps, score], ...]):
    the level it held, where the best single epoch also holds that epoch's luck (None for shorter curves)."""
    scores = np.array([score for _, score in curve], dtype=np.float64)
    if len(scores) < LEVEL_EPOCHS:
        return None
    return float(np.convolve(scores, np.ones(LEVEL_EPOCHS) / LEVEL_EPOCHS, mode="valid").max())


def format_search(result: dict) -> str:
    def lvl(entry):
        value = entry.get("valid_ndcg@10_level")
        return f"{value:10.4f}" if value is not None else f"{'':10s}"

    lines = [f"{'setting':32s}{'KL':>8s}{'ratio':>8s}{'valid ndcg@10':>15s}{'5-epoch':>10s}{'test ndcg@10':>14s}",
             "-" * 87]
    for name, b in result["baselines"].items():
        lines.append(f"{name.upper():32s}{'':8s}{'':8s}{b['valid']['ndcg@10']:15.4f}{lvl(b)}{b['test']['ndcg@10']:14.4f}"
                     + _pruned_text(b))
    for t in result["trained"]:
        label = make_strategy("genpas", t["alpha"], t["beta"], t["gamma"]).label
        lines.append(f"{label:32s}{t['kl']:8.3f}{t['ratio']:8.3f}{t['valid']['ndcg@10']:15.4f}{lvl(t)}"
                     f"{t['test']['ndcg@10']:14.4f}" + _pruned_text(t))
    best = result["best"]
    lines.append("")
    lines.append(f"best: {best['strategy']} (alpha {best['alpha']}, beta {best['beta']}, gamma {best['gamma']}): "
                 f"valid ndcg@10 {best['valid']['ndcg@10']:.4f}, test ndcg@10 {best['test']['ndcg@10']:.4f}")
    sp = result["screening_predicts_training"]
    def rho(value):
        return "n/a" if value is None else f"{value:+.2f}"

    lines.append(f"5-epoch: the best mean of {LEVEL_EPOCHS} consecutive validations (the level a training held; the "
                 "pick is by the best single epoch, which also holds that epoch's luck)")
    over = "trained settings" if "settings" not in sp else f"the {sp['settings']} trained settings not pruned"
    lines.append(f"screening vs training (Spearman over {over}): KL {rho(sp['spearman_kl_vs_valid_ndcg@10'])}, "
                 f"ratio {rho(sp['spearman_ratio_vs_valid_ndcg@10'])}")
    if result.get("prune") and result["prune"]["pruned"]:
        rule = result["prune"]
        lines.append(f"--prune (factor {rule['factor']:g}, margin {rule['margin']:g}): a pruned training stopped before "
                     "convergence, as its trend over its last patience window, steepened by the factor up to its last "
                     "epoch, plus the noise of its validations and the margin, stays below the leader; its figures "
                     "are those of its best epoch so far (genpas.search.pruning); pruning saved at most "
                     f"{rule['epochs_left_at_most']} epochs of training, summed over the pruned trainings up to the "
                     f"epoch cap")
    return "\n".join(lines)


def _pruned_text(entry: dict) -> str:
    facts = entry.get("pruned")
    if not facts:
        return ""
    reach, leader = apart(facts["reach"], facts["leader_valid_ndcg@10"])
    return f"  pruned after epoch {facts['epoch']} (would reach at most {reach} < {leader})"
