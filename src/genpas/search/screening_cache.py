"""The screening of a search, kept in DIR/screening-<key>.json so that it is computed once per search.

The screening trains nothing but takes minutes on a large log (about two on ML-1M). Every process of a search, and
every resumption, reads the first one's result. The key hashes what the screening depends on (the `facts`: data
options, a checksum of the split, the grid, keep fraction, samples, seed, maximum length, the screening's version).
A cache file is checked as strictly as the screening's own output would be, since a search trusts its order: the
same facts, exactly the grid's settings once each, numbers where numbers belong, a boolean `survivor`, survivors
with their ratio and the others without, and the screening's ranking. A file that fails is one GenpasError saying to
delete it; a cache that cannot be written is a warning, and the search goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from genpas.atomic import write_text
from genpas.augment.strategy import spelled
from genpas.errors import GenpasError
from genpas.search.screening import ranked

log = logging.getLogger(__name__)

SETTING = ("alpha", "beta", "gamma")
SURVIVOR_FIELDS = ("alignment", "discrimination", "ratio", "ratio_se")


def json_safe(obj):
    """inf -> "inf" / "-inf" (JSON has no infinity), in nested dicts and lists."""
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return spelled(obj)


def cache_path(out: Path, facts: dict) -> Path:
    return Path(out) / f"screening-{hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:10]}.json"


def _number(value, what: str) -> float:
    """A number as json_safe wrote it ("inf" and "-inf" included)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what} is {value!r}, not a number")
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{what} is {value!r}, not a number") from None


def _row(raw, index: int) -> dict:
    if not isinstance(raw, dict):
        raise ValueError(f"row {index} is not an object")
    row = dict(raw)
    for name in SETTING + ("kl",):
        row[name] = _number(raw.get(name), f"row {index}: {name}")
    if not isinstance(raw.get("survivor"), bool):
        raise ValueError(f"row {index}: survivor is {raw.get('survivor')!r}, not true or false")
    for name in SURVIVOR_FIELDS:
        if raw["survivor"]:
            row[name] = _number(raw.get(name), f"row {index}: {name}")
        elif raw.get(name) is not None:
            raise ValueError(f"row {index} did not survive the KL cut but has a {name}")
    return row


def read(path: Path, facts: dict, grid) -> tuple[list[dict], float] | None:
    """(rows, screening seconds) from the cache file, None if there is none; a damaged one is a GenpasError."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        if not isinstance(saved, dict) or not isinstance(saved.get("rows"), list):
            raise ValueError("not an object with a list of rows")
        if saved.get("facts") != facts:
            raise ValueError("it was written for another screening")
        rows = [_row(raw, i) for i, raw in enumerate(saved["rows"])]
        settings = [tuple(r[name] for name in SETTING) for r in rows]
        if sorted(settings) != sorted(tuple(float(x) for x in g) for g in grid):
            raise ValueError("its settings are not the grid's, each once")
        if [tuple(r[n] for n in SETTING) for r in ranked(rows)] != settings:
            raise ValueError("its rows are not in the screening's order")
        return rows, _number(saved.get("seconds"), "seconds")
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise GenpasError(f"screening cache {path} is damaged ({exc}); delete it to screen again") from None


def write(path: Path, facts: dict, rows: list[dict], seconds: float) -> None:
    """Keep the screening for later processes; a file system that refuses is a warning, not a failed search."""
    try:
        write_text(path, json.dumps(json_safe({"facts": facts, "rows": rows, "seconds": seconds})) + "\n")
    except OSError as exc:
        log.warning("cannot keep the screening, %s: %s; later processes will screen again", path, exc.strerror or exc)
