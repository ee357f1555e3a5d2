"""A run's per-user ranks, kept beside its metrics: RUN/ranks.npz.

A finished run writes the pessimistic rank of every evaluated user's target (the order of split.inputs(which)), for
validation and test, under each ranking protocol it evaluated: the history kept, and where the run excludes it,
excluded. Every recall@K and NDCG@K of the run is a mean over these ranks, so two runs on the same data can be
compared user by user (`genpas compare`, the experiments' per-seed comparisons) from a few kilobytes, with neither
the model nor the data at hand. The trainer writes the file whole when the run finishes, beside metrics.json, so
its ranks are those of the best checkpoint that metrics.json reports. `genpas evaluate --run RUN` adds the ranks of
a run finished before runs kept them, only where they reproduce metrics.json's figures.

The file is a NumPy archive read without pickles: one int32 array per key `<split>_history_<excluded|kept>`, and
`data_sha256`, the fingerprint of the data the users come from (metrics.json's `data_sha256`). Its members carry a
fixed time stamp, so the same ranks make the same bytes.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from genpas.atomic import atomic_path
from genpas.errors import GenpasError

FILE = "ranks.npz"


def ranks_key(which: str, exclude_history: bool) -> str:
    return f"{which}_history_{'excluded' if exclude_history else 'kept'}"


def metrics_name(which: str, exclude_history: bool, run_excludes: bool) -> str | None:
    """Where metrics.json reports the ranks of `ranks_key(which, exclude_history)` of a run whose own protocol is
    `run_excludes`: `which`, `<which>_history_kept`, or None (a protocol the run did not evaluate)."""
    if exclude_history == run_excludes:
        return which
    return f"{which}_history_kept" if run_excludes else None


def load_ranks(run: Path) -> tuple[str | None, dict[str, np.ndarray]]:
    """(data fingerprint, key -> ranks) of RUN/ranks.npz, (None, {}) when the run has none; a damaged file is an
    error that says how to write it again."""
    path = Path(run) / FILE
    if not path.is_file():
        return None, {}
    again = f"delete it, or write it again with `genpas evaluate --run {run}`"
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise GenpasError(f"{path} cannot be read ({type(exc).__name__}: {exc}): {again}") from None
    stored = arrays.pop("data_sha256", None)
    if not isinstance(stored, np.ndarray) or stored.shape != () or stored.dtype.kind != "U":
        raise GenpasError(f"{path} does not say which data its users come from: {again}")
    for name, ranks in arrays.items():
        if not isinstance(ranks, np.ndarray) or ranks.ndim != 1 or ranks.dtype.kind not in "iu" or \
                (len(ranks) and ranks.min() < 1):
            raise GenpasError(f"{path}: {name} is not a list of ranks (positive whole numbers): {again}")
    return str(stored), arrays


def read_ranks(run: Path, data_sha256: str | None = None) -> dict[str, np.ndarray]:
    """Every key's ranks of RUN/ranks.npz ({} when the run has none), refused when they are of other data than
    `data_sha256` (where given)."""
    stored, arrays = load_ranks(run)
    if arrays and data_sha256 is not None and stored != data_sha256:
        raise GenpasError(f"{Path(run) / FILE} holds ranks of other data than the run's metrics.json: delete it, "
                          f"or write it again with `genpas evaluate --run {run}`")
    return arrays


def write_ranks(run: Path, ranks: dict[str, np.ndarray], data_sha256: str) -> None:
    """Write RUN/ranks.npz whole: `ranks` (key -> one rank per user) of data `data_sha256`; under a temporary name,
    then renamed."""
    arrays = {"data_sha256": np.array(data_sha256), **{k: np.asarray(r, dtype=np.int32) for k, r in ranks.items()}}
    with atomic_path(Path(run) / FILE) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w") as out:
                np.lib.format.write_array(out, arrays[name], allow_pickle=False)


def finished_metrics(run: Path, strict: bool = False) -> tuple[dict, str | None, bool] | None:
    """(metrics.json, its data fingerprint (None for a run finished before it was written), the run's own
    exclude_history) of a finished run; None where the run has not finished or its metrics.json cannot say (with
    `strict`, a metrics.json that cannot say is a GenpasError)."""
    path = Path(run) / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
        return metrics, metrics.get("data_sha256"), bool(metrics["config"]["exclude_history"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        problem = f"cannot be read ({exc.strerror or exc})" if isinstance(exc, OSError) else "is not valid JSON"
    except (KeyError, TypeError, AttributeError):
        problem = "is not the metrics.json a run writes (it lacks config.exclude_history)"
    if strict:
        raise GenpasError(f"{path} {problem}: restore it, or train the run again")
    return None


def mismatch(ranks: np.ndarray, reported: dict) -> str | None:
    """The first figure of `reported` (metrics.json's metrics of one split and protocol) that `ranks` do not give
    back exactly, as 'ndcg@10 0.2820 from the ranks, 0.2578 in metrics.json'; None where every one matches."""
    from genpas.train.metrics import ranking_metrics

    ks = sorted({int(k.partition("@")[2]) for k in reported if k.partition("@")[2].isdigit()})
    if not ks:
        return None
    for key, value in ranking_metrics(ranks, ks).items():
        if key in reported and reported[key] != value:
            shown = f"{reported[key]:.4f}" if isinstance(reported[key], (int, float)) else repr(reported[key])
            return f"{key} {value:.4f} from the ranks, {shown} in metrics.json"
    return None


def add_verified(run: Path, ranks: dict[str, np.ndarray], data_sha256: str, ks=(5, 10)
                 ) -> tuple[list[str], list[str]]:
    """Add to a finished run's ranks.npz those of `ranks` (ranks_key -> ranks, of data `data_sha256`) whose figures
    are exactly the ones its metrics.json reports (the same best checkpoint ranked the same way), keeping its other
    keys of the same data; (keys added, keys refused). A run that has not finished, was trained on other data, or
    whose metrics.json does not report the protocol, gets none of them."""
    from genpas.train.metrics import ranking_metrics

    finished = finished_metrics(run)
    if finished is None:
        return [], sorted(ranks)
    metrics, data, run_excludes = finished
    if data not in (None, data_sha256):  # None: finished before metrics.json named its data; the figures decide
        return [], sorted(ranks)
    data = data_sha256
    try:
        stored, kept = load_ranks(run)
    except GenpasError:
        stored, kept = None, {}  # a damaged file is replaced
    kept = kept if stored == data else {}
    added, refused = [], []
    for key, r in sorted(ranks.items()):
        which, _, protocol = key.partition("_history_")
        name = metrics_name(which, protocol == "excluded", run_excludes)
        reported = metrics.get(name) if name else None
        figures = ranking_metrics(r, ks)
        same = isinstance(reported, dict) and reported.get("users") == len(r) and \
            any(k in reported for k in figures) and all(reported[k] == v for k, v in figures.items() if k in reported)
        (added if same else refused).append(key)
        if same:
            kept[key] = r
    if added:
        write_ranks(run, kept, data)
    return added, refused
