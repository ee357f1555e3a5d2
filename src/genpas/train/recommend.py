"""Top-K recommendations from a trained run: each user's next items after everything the user is known to have done.

The model reads the last `max_len` items of the user's whole sequence (training, validation and test events alike:
what a served model would see) and scores every item, as in evaluation. By default the items the user already has
are never recommended (the protocol of the published ML-1M numbers); `exclude_history=False` lets them through.
HSTU is asked at `request_time` (in the data's time unit), by default the time of the user's last event; the
published HSTU evaluation asks at the target's own time, so pass the time of the request where it is known. TIGER
generates only the items of its beam, passing over the user's history when it is excluded, so K may not exceed
its beam. Ties are broken by item code, so a run, the same users and the same K give the same lists on the CPU.

A user gets fewer than K items only when fewer than K can be ranked (the catalogue, or TIGER's beam, less the user's
history); the missing slots hold item code -1 and score -inf, and the files leave them out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genpas.augment.batches import gather_times
from genpas.data.split import EvalInputs
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError
from genpas.train.evaluate import history_mask, padded_inputs, ranking_scores

FORMATS = (".csv", ".parquet", ".jsonl")
# Scoring a batch holds about 16 bytes per (user, item): the scores, their masked copy, the history mask and top_k's
# masks. Batches are cut so that this stays within SCORE_BYTES, whatever the catalogue's size.
SCORE_BYTES = 1 << 30


@dataclass
class Recommendations:
    users: np.ndarray  # int64 [U] user codes of the store
    items: np.ndarray  # int64 [U, K] item codes, best first; -1 where nothing is left to rank
    scores: np.ndarray  # float32 [U, K] the model's scores; -inf where items is -1

    @property
    def count(self) -> int:
        return int((self.items >= 0).sum())


def user_codes(store: SequenceStore, ids: list[str] | None, option: str = "--users") -> np.ndarray:
    """The store's codes of the users named by `ids` (as the data spells them), in that order; None: every user."""
    if ids is None:
        return np.arange(store.num_users, dtype=np.int64)
    if not ids:
        raise GenpasError(f"{option}: no user ids given")
    code = {str(u): i for i, u in enumerate(store.user_ids)}
    unknown = [u for u in ids if u not in code]
    if unknown:
        raise GenpasError(f"{option}: {len(unknown)} of {len(ids)} ids are not users of the run's data, e.g. "
                          f"{unknown[0]!r} (ids are matched as the data spells them, after its preprocessing)")
    seen: set[str] = set()
    twice = next((u for u in ids if u in seen or seen.add(u)), None)
    if twice is not None:
        raise GenpasError(f"{option}: user {twice!r} is listed twice")
    return np.array([code[u] for u in ids], dtype=np.int64)


def check_k(model, k: int, num_items: int) -> None:
    if k < 1:
        raise GenpasError(f"--k must be >= 1, got {k}")
    if k > num_items:
        raise GenpasError(f"--k {k} exceeds the catalogue's {num_items} items")
    beam = getattr(model, "cfg", None) and getattr(model.cfg, "beam", None)
    if beam is not None and k > beam:
        raise GenpasError(f"--k {k} exceeds the beam of this TIGER run ({beam}): it ranks only its beam's items; "
                          f"give --beam {k} or more")


def _check_request_time(model, store: SequenceStore, users: np.ndarray, request_time: float | None) -> None:
    if request_time is None:
        return
    if not getattr(model, "needs_times", False):
        raise GenpasError("--at: this run's model reads no event times (only HSTU does)")
    if not np.isfinite(request_time):
        raise GenpasError(f"--at must be a finite time, got {request_time}")
    last = store.times[store.offsets[users + 1] - 1]
    if len(users) and request_time < last.max():
        late = int(np.argmax(last))
        raise GenpasError(f"--at {request_time:g} is before the last event of user {store.user_ids[users[late]]!r} "
                          f"({last[late]}); give a request time at or after every chosen user's last event")


@torch.no_grad()
def recommend(model, store: SequenceStore, users: np.ndarray, max_len: int, k: int, exclude_history: bool = True,
              device: torch.device | str = "cpu", batch_size: int = 512,
              request_time: float | None = None) -> Recommendations:
    """The top `k` items of every user in `users` (store codes); see the module docstring."""
    users = np.asarray(users, dtype=np.int64)
    check_k(model, k, store.num_items)
    _check_request_time(model, store, users, request_time)
    model.eval()
    lengths = store.lengths[users].astype(np.int64)
    inputs = EvalInputs(users, store.offsets[users].astype(np.int64), lengths, np.zeros(len(users), dtype=np.int64))
    cut = inputs.truncated(max_len)
    out_items = np.full((len(users), k), -1, dtype=np.int64)
    out_scores = np.full((len(users), k), -np.inf, dtype=np.float32)
    order = np.argsort(cut.lengths, kind="stable")  # batches padded only to their own longest input
    batch_size = max(1, min(batch_size, SCORE_BYTES // (16 * store.num_items)))
    for lo in range(0, len(users), batch_size):
        rows = order[lo:lo + batch_size]
        batch = torch.from_numpy(padded_inputs(store.items, inputs, rows, max_len)).to(device)
        seen = history_mask(store.items, inputs, rows, store.num_items, device) if exclude_history else None
        times = None
        if getattr(model, "needs_times", False):  # the request time follows the last input (default: its time)
            times = gather_times(store.times, cut.starts[rows], cut.lengths[rows], batch.shape[1] + 1)
            if request_time is not None:
                times[np.arange(len(rows)), cut.lengths[rows]] = request_time - store.times[cut.starts[rows]]
        index, values = top_k(ranking_scores(model, batch, times, seen), k)
        ranked = np.isfinite(values)
        out_items[rows] = np.where(ranked, index, -1)
        out_scores[rows] = np.where(ranked, values, -np.inf)
    return Recommendations(users, out_items, out_scores)


def top_k(scores: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(item codes, scores) [B, k] of the k best scores of each row, ties broken by the lower item code, in O(items)
    memory and time per row: every score above the k-th best is in, and of those equal to it the first ones."""
    kth = torch.topk(scores, k, dim=1).values[:, -1:]
    above = scores > kth
    tied = scores == kth
    room = k - above.sum(1, keepdim=True)
    chosen = above | (tied & (tied.cumsum(1, dtype=torch.int32) <= room))
    index = chosen.nonzero()[:, 1].view(len(scores), k)  # exactly k per row, in item order
    values = scores.gather(1, index)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices  # stable: equal scores keep item order
    return index.gather(1, order).cpu().numpy(), values.gather(1, order).cpu().numpy()


def write_recommendations(path: Path, recs: Recommendations, store: SequenceStore) -> int:
    """Write `recs` to `path` (its suffix picks the format: .csv and .parquet hold one row per user and rank, with
    string columns user_id and item_id, rank and score, users with no item left out; .jsonl one object per user:
    user_id, items, scores). Atomic; returns the number of recommendations written."""
    import polars as pl

    from genpas.atomic import atomic_path

    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise GenpasError(f"--out {path}: unknown format {suffix or '(no suffix)'!r}; use {', '.join(FORMATS)}")
    kept = recs.items >= 0
    users = np.asarray(store.user_ids[recs.users]).astype(str)
    with atomic_path(path) as tmp:
        if suffix == ".jsonl":  # one line per user, in the order asked, empty lists included
            with open(tmp, "w") as fh:
                for u, items, scores, ok in zip(users, recs.items, recs.scores, kept):
                    fh.write(json.dumps({"user_id": u, "items": store.item_ids[items[ok]].astype(str).tolist(),
                                         "scores": [float(str(s)) for s in scores[ok]]}) + "\n")
        else:
            frame = pl.DataFrame({
                "user_id": pl.Series(np.repeat(users, kept.sum(1)), dtype=pl.String),
                "rank": pl.Series(np.nonzero(kept)[1] + 1, dtype=pl.Int32),
                "item_id": pl.Series(np.asarray(store.item_ids[recs.items[kept]]).astype(str), dtype=pl.String),
                "score": pl.Series(recs.scores[kept], dtype=pl.Float32),
            })
            frame.write_csv(tmp) if suffix == ".csv" else frame.write_parquet(tmp)
    return recs.count


def run_config(run: Path, option: str = "--run"):
    """The TrainConfig of a run directory, or one error line (naming `option`) when `run` holds none."""
    from genpas.train.config import TrainConfig
    from genpas.train.run_dir import locate_data

    if not (Path(run) / "config.yaml").is_file():
        raise GenpasError(f"{option} {run}: no config.yaml there; give a run directory written by `genpas train`")
    cfg = locate_data(run, TrainConfig.from_run(Path(run) / "config.yaml"))
    if cfg.model == "pop" and (Path(run) / "best.safetensors").exists():  # popularity trains no weights
        raise GenpasError(f"{option} {run}: its config.yaml says model pop, but the run holds trained weights "
                          "(best.safetensors): was the config edited? Restore the one the run was trained with")
    return cfg


def recommend_run(run: Path, ids: list[str] | None = None, k: int = 10, exclude_history: bool = True,
                  device: str = "auto", batch_size: int = 512, request_time: float | None = None,
                  ids_option: str = "--users", beam: int | None = None) -> tuple[Recommendations, SequenceStore]:
    """Recommendations of a finished run (its config.yaml and best checkpoint) for the users `ids` (None: all),
    with the store they index. `beam`: TIGER's beam width here (default: the run's; a wider one ranks more items)."""
    from genpas.train.build import build_model, load_split, pick_device

    run = Path(run)
    cfg = run_config(run)
    if batch_size < 1:
        raise GenpasError(f"--batch-size must be >= 1, got {batch_size}")
    if k < 1:
        raise GenpasError(f"--k must be >= 1, got {k}")
    target = pick_device(device)
    if beam is not None and cfg.model != "tiger":
        raise GenpasError(f"--beam: only TIGER decodes with a beam; this run's model is {cfg.model}")
    if beam is not None and beam < 1:
        raise GenpasError(f"--beam must be >= 1, got {beam}")
    try:
        split = load_split(cfg)
    except GenpasError as exc:
        raise GenpasError(f"the run's data ({run / 'config.yaml'}: data: {cfg.data}) cannot be loaded: {exc}") from None
    store = split.full
    codes = user_codes(store, ids, ids_option)
    model, _ = build_model(cfg, split, run / "best.safetensors")  # TIGER: with the ids it trained with
    if beam is not None:
        model.cfg.beam = beam
    recs = recommend(model.to(target), store, codes, cfg.max_len, k, exclude_history, target, batch_size,
                     request_time)
    return recs, store
