"""The leave-one-out protocol (spec section 8).

Per user with n >= 3 events: the last event is the test target, the second-to-last the validation target, and the
first n - 2 events form the training sequence. The validation input is the training sequence; the test input is the
training sequence plus the validation item. Users with fewer than 3 events cannot be evaluated: by default they stay
in training with their whole sequence (`short_users="train"`); `short_users="drop"` removes them. Either way they are
counted in `summary()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genpas.data.store import SequenceStore
from genpas.errors import GenpasError

SHORT_POLICIES = ("train", "drop")


@dataclass
class EvalInputs:
    """One row per evaluated user: the input is full.items[start : start + length], the target an item code."""

    users: np.ndarray  # int64 user codes
    starts: np.ndarray  # int64 offsets into the full store's items
    lengths: np.ndarray  # int64 input lengths (before truncation to a model's max length)
    targets: np.ndarray  # int64 item codes

    def truncated(self, max_len: int | None) -> "EvalInputs":
        """Keep the last `max_len` items of every input."""
        if max_len is None:
            return self
        cut = np.maximum(self.lengths - max_len, 0)
        return EvalInputs(self.users, self.starts + cut, self.lengths - cut, self.targets)


@dataclass
class LeaveOneOut:
    full: SequenceStore
    train: SequenceStore
    eval_users: np.ndarray
    short_users: int
    short_policy: str

    def inputs(self, which: str) -> EvalInputs:
        """Validation ("valid") or test ("test") inputs and targets of every evaluable user."""
        n = self.full.lengths[self.eval_users]
        starts = self.full.offsets[self.eval_users]
        if which == "valid":
            lengths = n - 2
        elif which == "test":
            lengths = n - 1
        else:
            raise GenpasError(f"unknown evaluation split {which!r}; use 'valid' or 'test'")
        targets = self.full.items[starts + lengths].astype(np.int64)
        return EvalInputs(self.eval_users, starts, lengths, targets)

    def summary(self) -> dict:
        return {
            "eval_users": int(len(self.eval_users)),
            "short_users": int(self.short_users),
            "short_users_policy": self.short_policy,
            "train_interactions": int(self.train.num_interactions),
            "valid_targets": int(len(self.eval_users)),
            "test_targets": int(len(self.eval_users)),
        }


def training_part(store: SequenceStore, split: str, loo: LeaveOneOut | None = None) -> SequenceStore:
    """The sequences training pairs are cut from: 'loo' the leave-one-out training part, 'none' whole sequences."""
    if split == "loo":
        return (loo or leave_one_out(store)).train
    if split == "none":
        return store
    raise GenpasError(f"unknown --split {split!r}; use 'loo' or 'none'")


def training_lengths(lengths: np.ndarray, split: str, short_users: str = "train") -> np.ndarray:
    """The length of each user's training prefix under `split` ('loo' or 'none'), without copying any events: the
    training part of user u is items[offsets[u] : offsets[u] + training_lengths[u]]."""
    n = np.asarray(lengths, dtype=np.int64)
    if split == "none":
        return n
    if split != "loo":
        raise GenpasError(f"unknown split {split!r}; use loo or none")
    return np.where(n >= 3, n - 2, n if short_users == "train" else 0)


def leave_one_out(store: SequenceStore, short_users: str = "train") -> LeaveOneOut:
    if short_users not in SHORT_POLICIES:
        raise GenpasError(f"unknown short-user policy {short_users!r}; use one of {', '.join(SHORT_POLICIES)}")
    n = store.lengths
    evaluable = n >= 3
    if not evaluable.any():
        raise GenpasError("no user has the 3 events leave-one-out needs (training, validation and test)")
    keep = training_lengths(n, "loo", short_users)
    return LeaveOneOut(
        full=store,
        train=store.with_lengths(keep),
        eval_users=np.flatnonzero(evaluable).astype(np.int64),
        short_users=int((~evaluable).sum()),
        short_policy=short_users,
    )
