"""Reading the experiments' result files (DIR/<experiment>[-<model>].json) back, for reports.

A result file is written by `genpas experiment ...`, but a report may meet one that was edited, truncated or copied
from elsewhere. Each is checked before any figure or line is drawn: valid JSON, an object, the experiment its name
says, and the fields every report section reads. A file that fails is one GenpasError naming it and what to do.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from genpas.errors import GenpasError

# experiment -> (field, type) pairs that its report sections read, besides the common ones
FIELDS = {"strategies": (("strategies", dict),), "long-tail": (("strategies", dict),),
          "data-efficiency": (("rows", list),), "model-size": (("rows", list),), "screening": (("settings", list),)}
COMMON = (("experiment", str), ("data", str), ("config", dict), ("seeds", list))


def json_object(path: Path, fix: str) -> dict:
    """The JSON object in `path`, or one GenpasError saying what is wrong with the file and `fix`."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise GenpasError(f"{path}: unreadable ({exc}); {fix}") from None
    except ValueError as exc:
        raise GenpasError(f"{path}: not valid JSON ({exc}); {fix}") from None
    if not isinstance(result, dict):
        raise GenpasError(f"{path}: expected a JSON object, found {type(result).__name__}; {fix}")
    return result


def load_result(path: Path, kind: str) -> dict:
    """The result of experiment `kind` in `path`, checked (see the module docstring)."""
    fix = f"rerun `genpas experiment {kind}` or move the file away"
    result = json_object(path, fix)
    for field, kind_of in COMMON + FIELDS[kind]:
        if not isinstance(result.get(field), kind_of):
            found = "missing" if field not in result else f"a {type(result[field]).__name__}"
            raise GenpasError(f"{path}: field '{field}' should be a {kind_of.__name__}, is {found}; {fix}")
    if result["experiment"] != kind:
        raise GenpasError(f"{path}: holds a '{result['experiment']}' experiment, its name says '{kind}'; {fix}")
    if not result["seeds"]:
        raise GenpasError(f"{path}: field 'seeds' is empty; {fix}")
    if not result[FIELDS[kind][0][0]]:
        raise GenpasError(f"{path}: field '{FIELDS[kind][0][0]}' is empty: no result to report; {fix}")
    if (wrong := _seed_values_mismatch(result, len(result["seeds"]))) is not None:
        raise GenpasError(f"{path}: {wrong}; {fix}")
    return result


def _seed_values_mismatch(node, seeds: int, where: str = "") -> str | None:
    """Where a figure over the seeds ({"mean", "std", "values"}) holds other than one finite number per seed: the
    paired differences pair its values with another strategy's by position, so a list cut short or stretched would
    pair the wrong runs (None where every one holds)."""
    if isinstance(node, dict):
        values = node.get("values")
        if "mean" in node and isinstance(values, list):
            if len(values) != seeds or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               and math.isfinite(v) for v in values):
                return (f"'{where.lstrip('.')}' should hold one finite number per seed ({seeds}), holds "
                        f"{json.dumps(values)[:80]}")
        children = ((f".{key}", child) for key, child in node.items())
    elif isinstance(node, list):
        children = ((f"[{i}]", child) for i, child in enumerate(node))
    else:
        return None
    for step, child in children:
        found = _seed_values_mismatch(child, seeds, where + step)
        if found is not None:
            return found
    return None


SEARCH_FIELDS = (("data", str), ("seed", int), ("config", dict), ("screened", list), ("trained", list),
                 ("screen_seconds", (int, float)), ("best", dict))


SEARCH_FIX = "give the search.json that `genpas search` wrote"


def load_search(path: Path) -> dict:
    """A search.json (`genpas search`), checked for the fields a report reads and for its pick (search_setting)."""
    result = json_object(path, SEARCH_FIX)
    for field, kind_of in SEARCH_FIELDS:
        if not isinstance(result.get(field), kind_of):
            raise GenpasError(f"{path}: not a search.json (field '{field}' missing or malformed); {SEARCH_FIX}")
    search_setting(path, result, baseline_ok=True)
    return result


def search_setting(path: Path, result: dict | None = None, baseline_ok: bool = False) -> tuple[float, float, float]:
    """(alpha, beta, gamma) of the GenPAS setting a search.json (`result`, else read from `path`) picked, checked as
    --genpas is; one GenpasError naming the file otherwise. A search that picked a baseline (no GenPAS setting beat
    it) has no GenPAS pick: refused unless `baseline_ok` (a report only shows the search)."""
    from genpas.augment import parse_bias
    from genpas.augment.strategy import genpas

    result = json_object(path, SEARCH_FIX) if result is None else result
    best = result.get("best")
    if not isinstance(best, dict):
        raise GenpasError(f"{path}: not a search.json (field 'best' missing or malformed); {SEARCH_FIX}")
    values = []
    for key in ("alpha", "beta", "gamma"):
        value = best.get(key)
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise GenpasError(f"should be a number, inf or -inf, is {repr(value) if key in best else 'missing'}")
            values.append(parse_bias(value))
        except GenpasError as exc:
            raise GenpasError(f"{path}: not a search.json (best.{key}: {exc}); {SEARCH_FIX}") from None
    try:
        point = genpas(*values)
    except GenpasError as exc:
        raise GenpasError(f"{path}: not a search.json (best: {exc}); {SEARCH_FIX}") from None
    picked = best.get("strategy", "genpas")
    if picked != "genpas" and not baseline_ok:
        raise GenpasError(f"{path}: the search picked {str(picked).upper()}, a baseline (no GenPAS setting it trained "
                          f"beat it on validation), so it has no GenPAS setting to train; give --genpas "
                          f"ALPHA,BETA,GAMMA (a setting of the search's table) instead of --search")
    return point.alpha, point.beta, point.gamma


def load_results(experiment_dir: Path, kinds, models) -> dict[str, dict]:
    """file stem -> checked result, for every DIR/<kind>.json and DIR/<kind>-<model>.json present (kinds in order,
    SASRec's file without a suffix)."""
    results = {}
    for kind in kinds:
        for stem in (kind, *(f"{kind}-{model}" for model in models if model != "sasrec")):
            path = experiment_dir / f"{stem}.json"
            if path.exists():
                results[stem] = load_result(path, kind)
    return results
