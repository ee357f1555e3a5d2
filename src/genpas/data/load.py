"""Load a dataset by spec (a built-in name or a path), with an on-disk cache of the preprocessed store.

The cache key is the SHA-256 of the source file's content plus every option that changes the result, so an edited
file or a different k-core never reuses a stale store, and a second load of MovieLens-1M takes well under a second.
Each cache entry is a store directory with its manifest (sizes and checksums, written last); an entry that fails the
full check (truncated, damaged, replaced, half written) is reported in one line and rebuilt from the source.
`spec` may also be a store directory written by `genpas prepare`: it is opened memory-mapped, not read.
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
from genpas.data.store import SequenceStore, StoreError, read_manifest
from genpas.errors import GenpasError

log = logging.getLogger(__name__)
CACHE_VERSION = 3  # bump when preprocessing changes meaning (2: integer timestamps stay int64; 3: a header naming
#                   a column twice is refused, where it read the first copy)


@dataclass(frozen=True)
class LoadOptions:
    format: str | None = None  # None: detect from the file name and content
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    min_user_count: int = 0
    min_item_count: int = 0
    use_cache: bool = True


def no_reading_options(spec, options: LoadOptions, what: str) -> None:
    """Data that is read already (a built-in dataset, a prepared store) takes no format or column flags: one
    GenpasError rather than flags silently ignored."""
    defaults = LoadOptions()
    given = [flag for flag, key in (("--format", "format"), ("--user-col", "user_col"), ("--item-col", "item_col"),
                                    ("--time-col", "time_col")) if getattr(options, key) != getattr(defaults, key)]
    if given:
        raise GenpasError(f"{spec} is {what}, read already: {', '.join(given)} apply to reading a file; drop them")


def resolve(spec: str | Path, options: LoadOptions) -> tuple[Path, LoadOptions]:
    """A built-in name becomes its file and format; a path stays as it is."""
    if str(spec) in builtin.BUILTIN:
        no_reading_options(spec, options, "a built-in dataset")
        path = builtin.dataset_dir(str(spec)) / builtin.DATASETS[str(spec)].inter
        return path, LoadOptions(**{**asdict(options), "format": "recbole", "user_col": "user_id", "item_col": "item_id", "time_col": "timestamp"})
    return Path(spec).expanduser(), options


def cache_key(path: Path, options: LoadOptions) -> str:
    content = builtin.sha256(path)
    opts = {k: v for k, v in asdict(options).items() if k != "use_cache"}
    return hashlib.sha256(json.dumps([CACHE_VERSION, content, opts], sort_keys=True).encode()).hexdigest()[:32]


def is_store(spec: str | Path) -> bool:
    """A directory holding a prepared store (its manifest), as opposed to a file to read."""
    path = Path(spec).expanduser()
    return path.is_dir() and (path / "manifest.json").is_file()


def load_dataset(spec: str | Path, options: LoadOptions = LoadOptions()) -> SequenceStore:
    """Read, preprocess and cache. `spec` is a built-in name ('ml-100k', 'ml-1m'), a path to a file in any
    supported format, or a store directory from `genpas prepare` (memory-mapped; the options must not ask for
    preprocessing the store did not have)."""
    for name in ("min_user_count", "min_item_count"):
        if getattr(options, name) < 0:
            raise GenpasError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(options, name)}")
    if str(spec) not in builtin.BUILTIN and is_store(spec):
        return open_prepared(Path(spec).expanduser(), options)
    path, options = resolve(spec, options)
    key = None
    if options.use_cache and path.is_file():
        key = cache_key(path, options)
        cached = builtin.cache_dir() / "stores" / key
        if cached.exists():
            try:
                store = SequenceStore.load(cached, verify="full")
                log.debug("loaded cached store %s", cached)
                return store
            except StoreError as exc:
                log.warning("cache entry damaged, rebuilding it from %s: %s", path, exc)
    events = read_events(path, options.format, Columns(options.user_col, options.item_col, options.time_col))
    store = build_store(events, options.min_user_count, options.min_item_count, source=str(path))
    store.stats["source"] = str(path)
    if key is not None:
        try:
            store.save(builtin.cache_dir() / "stores" / key, source={"path": str(path), "sha256": builtin.sha256(path)},
                       options={k: v for k, v in asdict(options).items() if k != "use_cache"}, engine="in-process")
        except OSError as exc:  # a read-only cache must not stop the work
            log.warning("cannot cache the preprocessed store: %s", exc)
    return store


def open_prepared(directory: Path, options: LoadOptions) -> SequenceStore:
    """A prepared store, memory-mapped. Its k-core was fixed when it was prepared, so asking for a stricter one here
    is an error rather than a silent no-op."""
    no_reading_options(directory, options, "a prepared store")
    store = SequenceStore.load(directory, mmap=True, verify="sizes")
    prepared = read_manifest(directory).get("options", {})
    for flag, key in (("--min-user-count", "min_user_count"), ("--min-item-count", "min_item_count")):
        asked = getattr(options, key)
        if asked > 1 and asked != prepared.get(key, 0):
            raise GenpasError(f"{directory}: a prepared store with {key}={prepared.get(key, 0)}; {flag} {asked} "
                              f"applies when preparing (genpas prepare ... {flag} {asked})")
    return store


def store_directory(spec: str | Path, options: LoadOptions = LoadOptions()) -> Path:
    """A store directory holding `spec`: the store itself, or its entry in the preprocessed-data cache (built if
    needed). What the engines open, memory-mapped, in every partition."""
    if str(spec) not in builtin.BUILTIN and is_store(spec):
        no_reading_options(spec, options, "a prepared store")
        return Path(spec).expanduser()
    if not options.use_cache:
        raise GenpasError("--engine needs a store: drop --no-cache, or prepare one with genpas prepare")
    load_dataset(spec, options)
    path, resolved = resolve(spec, options)
    directory = builtin.cache_dir() / "stores" / cache_key(path, resolved)
    if not (directory / "manifest.json").is_file():
        raise GenpasError(f"cannot keep a store of {spec} in the cache ({builtin.cache_dir()}); prepare one with "
                          "genpas prepare and pass it as --data")
    return directory
