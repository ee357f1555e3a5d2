"""Full-ranking evaluation of a model on the leave-one-out validation or test targets, batched."""

from __future__ import annotations

import numpy as np
import torch

from genpas.augment.batches import gather_times
from genpas.data.split import EvalInputs, LeaveOneOut
from genpas.errors import GenpasError
from genpas.train.metrics import GROUP_NAMES, popularity_groups, ranking_metrics, target_ranks


def padded_inputs(items: np.ndarray, inputs: EvalInputs, rows: np.ndarray, max_len: int) -> np.ndarray:
    """Left-aligned [len(rows), W] item codes + 1 of the last `max_len` items of each input (0 = padding)."""
    cut = inputs.truncated(max_len)
    length = cut.lengths[rows]
    width = max(1, int(length.max()))
    cols = np.arange(width)
    mask = cols[None, :] < length[:, None]
    idx = np.where(mask, cut.starts[rows][:, None] + cols[None, :], 0)
    return np.where(mask, items[idx].astype(np.int64) + 1, 0)


def evaluate(
    model,
    split: LeaveOneOut,
    which: str,
    max_len: int,
    device: torch.device | str = "cpu",
    ks: tuple[int, ...] = (5, 10),
    exclude_history: bool = False,
    batch_size: int = 512,
    by_length: bool = True,
) -> dict:
    """Recall@K and NDCG@K over all items (pessimistic ties), overall and by target-popularity group.

    NaN and +inf scores are refused (GenpasError): a diverged model is an error, never a perfect hit.

    exclude_history: give every item of the user's input (its whole history, not only the last max_len) the lowest
    score before ranking, except the target itself; TIGER's beam passes over those items instead of spending places
    on them. Off by default; the choice is written into the result.

    by_length: batch users in order of input length (the default; see below), or in user order.
    """
    ranks = user_ranks(model, split, which, max_len, device, exclude_history, batch_size, by_length)
    return rank_summary(ranks, split, which, ks, exclude_history)


def rank_summary(ranks: np.ndarray, split: LeaveOneOut, which: str, ks: tuple[int, ...] = (5, 10),
                 exclude_history: bool = False) -> dict:
    """`evaluate`'s result from the users' ranks (`user_ranks`): the metrics, overall and by target popularity."""
    result = {**ranking_metrics(ranks, ks), "users": int(len(ranks)), "exclude_history": bool(exclude_history)}
    groups = popularity_groups(split.train.items, split.full.num_items)[split.inputs(which).targets]
    result["groups"] = {
        name: {**ranking_metrics(ranks[groups == g], ks), "users": int((groups == g).sum())}
        for g, name in enumerate(GROUP_NAMES)
    }
    return result


def final_evaluation(model, split: LeaveOneOut, cfg, device, also_kept: bool = True) -> tuple[dict, dict]:
    """A run's closing evaluation: metrics on valid and test under the run's protocol (cfg.exclude_history), and
    where that excludes the history and `also_kept`, the history-kept ones beside ("valid_history_kept", ...); and
    the users' ranks behind each (ranks.py keys), which the run keeps in ranks.npz."""
    from genpas.train.ranks import ranks_key

    metrics, ranks = {}, {}
    for exclude in [cfg.exclude_history] + ([False] if cfg.exclude_history and also_kept else []):
        for which in ("valid", "test"):
            r = user_ranks(model, split, which, cfg.max_len, device, exclude, cfg.eval_batch_size)
            ranks[ranks_key(which, exclude)] = r
            name = which if exclude == cfg.exclude_history else f"{which}_history_kept"
            metrics[name] = rank_summary(r, split, which, cfg.ks, exclude)
    return metrics, ranks


@torch.no_grad()
def user_ranks(model, split: LeaveOneOut, which: str, max_len: int, device: torch.device | str = "cpu",
               exclude_history: bool = False, batch_size: int = 512, by_length: bool = True) -> np.ndarray:
    """The pessimistic rank of every evaluated user's `which` target over all items (see `evaluate`), in the order
    of split.inputs(which)."""
    model.eval()
    inputs = split.inputs(which)
    items = split.full.items
    ranks = np.empty(len(inputs.targets), dtype=np.int64)
    # Users in order of input length, so a batch is padded only to its own longest input: with the lengths of real
    # data (ML-1M at length 200: inputs of 108 items on average) that halves the work. A user's scores depend on its
    # own input only (no model attends to padding), up to float rounding of the batch's shapes.
    lengths = inputs.truncated(max_len).lengths
    order = np.argsort(lengths, kind="stable") if by_length else np.arange(len(lengths))
    for lo in range(0, len(ranks), batch_size):
        rows = order[lo:lo + batch_size]
        batch = torch.from_numpy(padded_inputs(items, inputs, rows, max_len)).to(device)
        targets = torch.from_numpy(inputs.targets[rows]).to(device)
        seen = None
        if exclude_history:
            seen = history_mask(items, inputs, rows, split.full.num_items, device, keep=targets)
        times = None
        if getattr(model, "needs_times", False):  # input times and the target's time (the request time)
            cut = inputs.truncated(max_len)
            times = gather_times(split.full.times, cut.starts[rows], cut.lengths[rows] + 1, batch.shape[1] + 1)
        scores = ranking_scores(model, batch, times, seen, f"{which} users")
        ranks[rows] = target_ranks(scores, targets).cpu().numpy()
    return ranks


def ranking_scores(model, batch: torch.Tensor, times: np.ndarray | None, seen: torch.Tensor | None,
                   who: str = "users") -> torch.Tensor:
    """[B, num_items] float scores of a batch of inputs, ready to rank: HSTU reads `times` (its inputs' times, then
    the request time), TIGER's beam passes over the `seen` items, and every model's `seen` items (the history to
    exclude, or None) score -inf. NaN and +inf are refused (a diverged model); -inf is legal: "ranked last"."""
    if times is not None:
        scores = model.rank_scores(batch, torch.from_numpy(times).to(batch.device)).float()
    elif getattr(model, "generative", False) and seen is not None:
        scores = model.rank_scores(batch, banned=seen).float()
    else:
        scores = model.rank_scores(batch).float()
    bad = scores.isnan() | scores.isposinf()
    if bad.any():
        raise GenpasError(f"the model gave {'NaN' if scores.isnan().any() else '+inf'} scores for "
                          f"{int(bad.any(1).sum())} of {len(batch)} {who} in a batch; a diverged model cannot be "
                          f"ranked")
    return scores if seen is None else scores.masked_fill(seen, -torch.inf)


def history_mask(items: np.ndarray, inputs: EvalInputs, rows: np.ndarray, num_items: int, device,
                 keep: torch.Tensor | None = None) -> torch.Tensor:
    """[len(rows), num_items] bool: True at every item of each row's whole input (not only its last max_len items),
    except the row's `keep` item (the target, when a history item is the target again)."""
    lengths = inputs.lengths[rows]
    row_of = torch.from_numpy(np.repeat(np.arange(len(rows)), lengths)).to(device)
    pos = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    seen = torch.from_numpy(items[np.repeat(inputs.starts[rows], lengths) + pos].astype(np.int64)).to(device)
    mask = torch.zeros(len(rows), num_items, dtype=torch.bool, device=device)
    mask[row_of, seen] = True
    if keep is not None:
        mask[torch.arange(len(rows), device=device), keep] = False
    return mask
