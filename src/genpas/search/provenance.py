"""How an experiment's runs were produced, as a report's section says it: the command, seeds, model and recipe, the
precision and devices the runs recorded, and their training time (read from the result's JSON; experiment_report.py
puts it at the head of every section).
"""

from __future__ import annotations

from genpas.search.models_report import MODEL_NAMES


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def provenance(result: dict) -> str:
    cfg = result["config"]
    command = result.get("command") or f"(Python API) experiment {result['experiment']}"
    seeds = ", ".join(str(s) for s in result["seeds"])
    model = MODEL_NAMES.get(cfg["model"], cfg["model"])
    return (f"Command: `{command}`. Seeds: {seeds}. {model} {cfg['dim']} wide, {cfg['layers']} layers, max length "
            f"{cfg['max_len']}, mode `{cfg['mode']}`, batch {cfg['batch_size']}{_grouped(cfg)}, lr {cfg['lr']}, "
            f"{precision_text(cfg, _run_values(result, 'device'), _run_values(result, 'precision'))}, at most "
            f"{cfg['epochs']} epochs with patience {cfg['patience']}; full ranking, pessimistic ties. Training time "
            f"of its runs: {_minutes(result['train_seconds_of_runs'])} ({_with_evaluation(result)}; runs shared with "
            f"other experiments are counted in each).{_devices(result)}")


def precision_text(cfg: dict, devices=(), resolved=()) -> str:
    """How runs' arithmetic ran: their `precision` (results from before the option trained as `auto` does); `auto`
    as every run records it resolved (`resolved`, fp32 or bf16 per run), else as the `devices` they ran on suggest
    (bf16 autocast on CUDA, float32 elsewhere)."""
    chosen = cfg.get("precision", "auto")
    devices = [d for d in devices if d and str(d).split(":")[0] in ("cpu", "cuda", "mps")]  # not unknown or none
    if chosen == "auto" and resolved and None not in resolved and len(set(resolved)) == 1:
        chosen = resolved[0]
    elif chosen == "auto" and devices:
        cuda = {str(d).startswith("cuda") for d in devices}
        chosen = "auto" if len(cuda) > 1 else "bf16" if cuda == {True} else "fp32"
    return {"fp32": "float32", "bf16": "bf16 autocast"}.get(chosen, "bf16 autocast on CUDA, float32 elsewhere")


def _grouped(cfg: dict) -> str:
    groups = cfg.get("group_by_length", 0)
    return f" (grouped by input length, {groups} batches at a time)" if groups > 1 else ""


def _devices(result: dict) -> str:
    """" Devices: cpu (4 runs), cuda:0 (2 runs)." from the per-run records of a result ("" when none says)."""
    counts: dict[str, int] = {}
    for device in _run_values(result, "device"):
        if device:
            counts[device] = counts.get(device, 0) + 1
    listed = ", ".join(f"{d} ({n} run{'s' * (n != 1)})" for d, n in sorted(counts.items()))
    return f" Devices: {listed}." if listed else ""


def _run_values(result: dict, key: str) -> list:
    """`key` (device or precision) of every run of a result: the header's list of them (run_devices, ...), else from
    the per-run records (the lists under "runs", as results written before the header listed them keep), None where
    a record lacks it."""
    if isinstance(result.get(f"run_{key}s"), list):
        return list(result[f"run_{key}s"])
    values: list = []

    def walk(node):
        if isinstance(node, dict):
            for name, value in node.items():
                if name == "runs" and isinstance(value, list):
                    values.extend(run.get(key) for run in value if isinstance(run, dict))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return values


def _with_evaluation(result: dict) -> str:
    if result.get("wall_seconds_of_runs") is not None:
        return f"{_minutes(result['wall_seconds_of_runs'])} with evaluation"
    n = result.get("runs_without_eval_seconds", 0)
    return (f"the time with evaluation is not known: {n} run{'s' * (n != 1)} resumed from a checkpoint older than "
            f"that count")


def capped_note(result: dict) -> str | None:
    """The runs of an experiment that the epoch cap ended before validation patience could (not converged: they
    were still improving, or had not gone `patience` epochs without gain), or None where no run says so."""
    hits = []
    for row in result["strategies"].values():
        curves = row.get("curves") or [None] * len(result["seeds"])
        for seed, ended, best, curve in zip(result["seeds"], row.get("stopped_by", []), row.get("best_epoch", []),
                                             curves):
            if ended == "epochs":
                run = f" after {len(curve)} epochs" if curve else ""
                hits.append(f"{row['label']} seed {seed}{run}, its best at epoch {best} (from 0)")
    if not hits:
        return None
    return (f"Not converged: the epoch cap, not validation patience ({result['config']['patience']} epochs without "
            f"gain), ended {'; '.join(hits)}. "
            + ("Its figures are a bounded run's" if len(hits) == 1 else "Their figures are bounded runs'")
            + ", not converged ones: trained on, the best validation score could only rise, and the test figures "
              "could move either way.")
