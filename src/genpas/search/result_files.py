"""Reading the experiments' result files (DIR/<experiment>[-<model>].json) back, for reports.

A result file is written by `genpas experiment ...`, but a report may meet one that was edited, truncated or copied
from elsewhere. Each is checked before any figure or line is drawn: valid JSON, an object, the experiment its name
says, and the fields every report section reads. A file that fails is one GenpasError naming it and what to do.
"""

from __future__ import annotations

import json
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
    return result


SEARCH_FIELDS = (("data", str), ("seed", int), ("config", dict), ("screened", list), ("trained", list),
                 ("screen_seconds", (int, float)), ("best", dict))


def load_search(path: Path) -> dict:
    """A search.json (`genpas search`), checked for the fields a report reads."""
    fix = "give the search.json that `genpas search` wrote"
    result = json_object(path, fix)
    for field, kind_of in SEARCH_FIELDS:
        if not isinstance(result.get(field), kind_of):
            raise GenpasError(f"{path}: not a search.json (field '{field}' missing or malformed); {fix}")
    return result


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
