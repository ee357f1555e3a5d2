"""Load a dataset by spec (a built-in name or a path), with an on-disk cache of the preprocessed store.

The cache key is the SHA-256 of the source file's content plus every option that changes the result, so an edited
file or a different k-core never reuses a stale store, and a second load of MovieLens-1M takes well under a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from genpas.data import builtin
from genpas.data.preprocess import build_store
from genpas.data.readers import Columns, read_events
from genpas.data.store import SequenceStore

log = logging.getLogger(__name__)
CACHE_VERSION = 1  # bump when preprocessing changes meaning


@dataclass(frozen=True)
class LoadOptions:
    format: str | None = None  # None: detect from the file name and content
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    min_user_count: int = 0
    min_item_count: int = 0
    use_cache: bool = True


def resolve(spec: str | Path, options: LoadOptions) -> tuple[Path, LoadOptions]:
    """A built-in name becomes its file and format; a path stays as it is."""
    if str(spec) in builtin.BUILTIN:
        path = builtin.dataset_dir(str(spec)) / builtin.DATASETS[str(spec)].inter
        return path, LoadOptions(**{**asdict(options), "format": "recbole", "user_col": "user_id", "item_col": "item_id", "time_col": "timestamp"})
    return Path(spec).expanduser(), options


def cache_key(path: Path, options: LoadOptions) -> str:
    content = builtin.sha256(path)
    opts = {k: v for k, v in asdict(options).items() if k != "use_cache"}
    return hashlib.sha256(json.dumps([CACHE_VERSION, content, opts], sort_keys=True).encode()).hexdigest()[:32]


def load_dataset(spec: str | Path, options: LoadOptions = LoadOptions()) -> SequenceStore:
    """Read, preprocess and cache. `spec` is a built-in name ('ml-100k', 'ml-1m') or a path to a file in any
    supported format."""
    path, options = resolve(spec, options)
    key = None
    if options.use_cache and path.is_file():
        key = cache_key(path, options)
        cached = builtin.cache_dir() / "stores" / key
        if (cached / "stats.json").exists():
            log.debug("loading cached store %s", cached)
            return SequenceStore.load(cached)
    events = read_events(path, options.format, Columns(options.user_col, options.item_col, options.time_col))
    store = build_store(events, options.min_user_count, options.min_item_count, source=str(path))
    store.stats["source"] = str(path)
    if key is not None:
        try:
            store.save(builtin.cache_dir() / "stores" / key)
        except OSError as exc:  # a read-only cache must not stop the work
            log.warning("cannot cache the preprocessed store: %s", exc)
    return store
