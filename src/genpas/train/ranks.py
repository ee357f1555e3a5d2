"""A run's per-user ranks, kept beside its metrics: RUN/ranks.npz.

A finished run writes the pessimistic rank of every evaluated user's target (the order of split.inputs(which)), for
validation and test, under each ranking protocol it evaluated: the history kept, and where the run excludes it,
excluded. Every recall@K and NDCG@K of the run is a mean over these ranks, so two runs on the same data can be
compared user by user (`genpas compare`, the experiments' per-seed comparisons) from a few kilobytes, with neither
the model nor the data at hand. `genpas evaluate --run RUN` writes the ranks of a run finished before runs kept them.

The file is a NumPy archive read without pickles: one int32 array per key `<split>_history_<excluded|kept>`, and
`data_sha256`, the fingerprint of the data the users come from (metrics.json's `data_sha256`).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from genpas.atomic import atomic_path
from genpas.errors import GenpasError

FILE = "ranks.npz"


def ranks_key(which: str, exclude_history: bool) -> str:
    return f"{which}_history_{'excluded' if exclude_history else 'kept'}"


def read_ranks(run: Path, data_sha256: str | None = None) -> dict[str, np.ndarray]:
    """Every key's ranks of RUN/ranks.npz ({} when the run has none); a damaged file, or one of other data than
    `data_sha256`, is an error that says how to write it again."""
    path = Path(run) / FILE
    if not path.is_file():
        return {}
    again = f"delete it, or write it again with `genpas evaluate --run {run}`"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise GenpasError(f"{path} cannot be read ({exc}): {again}") from None
    stored = arrays.pop("data_sha256", None)
    if stored is None or stored.shape != () or stored.dtype.kind != "U":
        raise GenpasError(f"{path} does not say which data its users come from: {again}")
    if data_sha256 is not None and str(stored) != data_sha256:
        raise GenpasError(f"{path} holds ranks of other data than the run's metrics.json: {again}")
    for name, ranks in arrays.items():
        if ranks.ndim != 1 or ranks.dtype.kind not in "iu" or (len(ranks) and ranks.min() < 1):
            raise GenpasError(f"{path}: {name} is not a list of ranks (positive whole numbers): {again}")
    return arrays


def write_ranks(run: Path, ranks: dict[str, np.ndarray], data_sha256: str) -> None:
    """Add `ranks` (key -> one rank per user) to RUN/ranks.npz, replacing those keys, keeping the others of the same
    data; written under a temporary name and renamed."""
    path = Path(run) / FILE
    try:
        kept = read_ranks(run, data_sha256)
    except GenpasError:
        kept = {}  # a damaged file, or ranks of data the run no longer has: replaced whole
    arrays = {**kept, **{key: np.asarray(r, dtype=np.int32) for key, r in ranks.items()}}
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        np.savez_compressed(out, data_sha256=np.array(data_sha256), **arrays)
