"""Top-K recommendations from a trained run: each user's next items after everything the user is known to have done.

The model reads the last `max_len` items of the user's whole sequence (training, validation and test events alike:
what a served model would see) and scores every item, as in evaluation. By default the items the user already has
are never recommended (the protocol of the published ML-1M numbers); `exclude_history=False` lets them through. HSTU
is asked at `request_time` (in the data's time unit), by default the time of the user's last event; the published HSTU
evaluation asks at the target's own time, so pass the time of the request where it is known. TIGER scores only the items of its beam, so K may not exceed its
beam. Ties are broken by item code, so a run, the same users and the same K give the same lists on the CPU.

A user gets fewer than K items only when fewer than K can be ranked (the catalogue, or TIGER's beam, less the user's
history); the missing slots hold item code -1 and score -inf, and `rows` leaves them out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genpas.augment.batches import gather_times
from genpas.data.split import EvalInputs
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError
from genpas.train.evaluate import padded_inputs

FORMATS = (".csv", ".parquet", ".jsonl")


@dataclass
class Recommendations:
    users: np.ndarray  # int64 [U] user codes of the store
    items: np.ndarray  # int64 [U, K] item codes, best first; -1 where nothing is left to rank
    scores: np.ndarray  # float32 [U, K] the model's scores; -inf where items is -1

    def rows(self, store: SequenceStore) -> Iterator[tuple[object, int, object, float]]:
        """(user id, rank from 1, item id, score) in the data's own ids, best first, empty slots left out."""
        for u, items, scores in zip(self.users, self.items, self.scores):
            for rank, (item, score) in enumerate(zip(items, scores), start=1):
                if item >= 0:
                    yield _plain(store.user_ids[u]), rank, _plain(store.item_ids[item]), float(score)


def user_codes(store: SequenceStore, ids: list[str] | None) -> np.ndarray:
    """The store's codes of the users named by `ids` (as the data spells them), in that order; None: every user."""
    if ids is None:
        return np.arange(store.num_users, dtype=np.int64)
    if not ids:
        raise GenpasError("--users: no user ids given")
    code = {str(u): i for i, u in enumerate(store.user_ids)}
    unknown = [u for u in ids if u not in code]
    if unknown:
        raise GenpasError(f"--users: {len(unknown)} of {len(ids)} ids are not users of the run's data, e.g. "
                          f"{unknown[0]!r} (ids are matched as the data spells them, after its preprocessing)")
    seen: set[str] = set()
    twice = next((u for u in ids if u in seen or seen.add(u)), None)
    if twice is not None:
        raise GenpasError(f"--users: user {twice!r} is listed twice")
    return np.array([code[u] for u in ids], dtype=np.int64)


@torch.no_grad()
def recommend(model, store: SequenceStore, users: np.ndarray, max_len: int, k: int, exclude_history: bool = True,
              device: torch.device | str = "cpu", batch_size: int = 512,
              request_time: float | None = None) -> Recommendations:
    """The top `k` items of every user in `users` (store codes); see the module docstring."""
    if k < 1:
        raise GenpasError(f"--k must be >= 1, got {k}")
    if k > store.num_items:
        raise GenpasError(f"--k {k} exceeds the catalogue's {store.num_items} items")
    beam = getattr(getattr(model, "cfg", None), "beam", None)
    if beam is not None and k > beam:
        raise GenpasError(f"--k {k} exceeds the beam of this TIGER run ({beam}): it ranks only its beam's items; "
                          f"retrain with --beam >= {k}")
    users = np.asarray(users, dtype=np.int64)
    timed = getattr(model, "needs_times", False)
    if request_time is not None:
        if not timed:
            raise GenpasError("--at: this run's model reads no event times (only HSTU does)")
        if not np.isfinite(request_time):
            raise GenpasError(f"--at must be a finite time, got {request_time}")
        last = store.times[store.offsets[users + 1] - 1]
        if len(users) and request_time < last.max():
            late = int(np.argmax(last))
            raise GenpasError(f"--at {request_time:g} is before the last event of user {store.user_ids[users[late]]!r} "
                              f"({last[late]}); give a request time at or after every chosen user's last event")
    model.eval()
    lengths = store.lengths[users].astype(np.int64)
    inputs = EvalInputs(users, store.offsets[users].astype(np.int64), lengths, np.zeros(len(users), dtype=np.int64))
    cut = inputs.truncated(max_len)
    out_items = np.full((len(users), k), -1, dtype=np.int64)
    out_scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    order = np.argsort(cut.lengths, kind="stable")  # batches padded only to their own longest input
    for lo in range(0, len(users), batch_size):
        rows = order[lo:lo + batch_size]
        batch = torch.from_numpy(padded_inputs(store.items, inputs, rows, max_len)).to(device)
        if timed:  # the request time goes after the last input (by default the last column repeats the last time)
            times = gather_times(store.times, cut.starts[rows], cut.lengths[rows], batch.shape[1] + 1)
            if request_time is not None:
                times[np.arange(len(rows)), cut.lengths[rows]] = request_time - store.times[cut.starts[rows]]
            scores = model.rank_scores(batch, torch.from_numpy(times).to(device)).float()
        else:
            scores = model.rank_scores(batch).float()
        if (scores.isnan() | scores.isposinf()).any():
            raise GenpasError("the model gave NaN or +inf scores; a diverged model cannot recommend")
        if exclude_history:
            scores = _without_history(scores, store, inputs, rows)
        # A stable sort breaks ties by item code (topk does not promise an order among equal scores).
        values, index = torch.sort(scores, dim=1, descending=True, stable=True)
        values, index = values[:, :k].cpu().numpy(), index[:, :k].cpu().numpy()
        ranked = np.isfinite(values)
        out_items[rows] = np.where(ranked, index, -1)
        out_scores[rows] = np.where(ranked, values, -np.inf)
    return Recommendations(users, out_items, out_scores)


def _without_history(scores: torch.Tensor, store: SequenceStore, inputs: EvalInputs, rows: np.ndarray) -> torch.Tensor:
    """`scores` with every item of each user's whole sequence set to -inf."""
    lengths = inputs.lengths[rows]
    row_of = np.repeat(np.arange(len(rows)), lengths)
    pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    seen = store.items[np.repeat(inputs.starts[rows], lengths) + pos].astype(np.int64)
    scores = scores.clone()
    scores[torch.from_numpy(row_of).to(scores.device), torch.from_numpy(seen).to(scores.device)] = -torch.inf
    return scores


def write_recommendations(path: Path, recs: Recommendations, store: SequenceStore) -> int:
    """Write `recs` to `path` (its suffix picks the format: .csv and .parquet hold one row per user and rank, with
    columns user_id, rank, item_id, score; .jsonl one object per user: user_id, items, scores). Atomic; returns the
    number of recommendations written."""
    import json

    import polars as pl

    from genpas.atomic import atomic_path

    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise GenpasError(f"--out {path}: unknown format {suffix or '(no suffix)'!r}; use {', '.join(FORMATS)}")
    rows = list(recs.rows(store))
    with atomic_path(path) as tmp:
        if suffix == ".jsonl":
            with open(tmp, "w") as fh:
                for u, items, scores in zip(recs.users, recs.items, recs.scores):
                    kept = items >= 0
                    fh.write(json.dumps({"user_id": _plain(store.user_ids[u]),
                                         "items": [_plain(store.item_ids[i]) for i in items[kept]],
                                         "scores": [float(str(s)) for s in scores[kept]]}) + "\n")
        else:
            frame = pl.DataFrame({"user_id": [r[0] for r in rows], "rank": [r[1] for r in rows],
                                  "item_id": [r[2] for r in rows], "score": [r[3] for r in rows]},
                                 schema_overrides={"rank": pl.Int32, "score": pl.Float32}, strict=False)
            frame.write_csv(tmp) if suffix == ".csv" else frame.write_parquet(tmp)
    return len(rows)


def _plain(value):
    """A NumPy scalar as the Python value JSON writes."""
    return value.item() if isinstance(value, np.generic) else value
