"""Classic input transforms (the CL4SRec / CoSeRec family), composable after GenPAS sampling, seeded.

Each transform rewrites the input of a training pair (never its target) with a ratio r in [0, 1]:

    crop        keep a random contiguous part of max(1, floor(r n)) items
    mask        replace floor(r n) random items by the padding token (0): "this item is unknown"
    reorder     shuffle a random contiguous part of floor(r n) items
    insert      insert floor(r n) copies of random items of the same input at random places
    substitute  replace floor(r n) random items by items drawn from the training popularity distribution

(CoSeRec's insert/substitute use item-similarity models; here the correlated item is a copy from the same input or a
popularity draw, which needs no extra model.) Transforms apply in `pairs` mode only: in `packed` mode one input
serves many targets, and rewriting it would change every one of them. Inputs longer than max_len after an insert
keep their last max_len items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genpas.errors import GenpasError

NAMES = ("crop", "mask", "reorder", "insert", "substitute")


@dataclass(frozen=True)
class Transform:
    name: str
    ratio: float

    def __post_init__(self):
        if self.name not in NAMES:
            raise GenpasError(f"unknown transform {self.name!r}; choose from {', '.join(NAMES)}")
        if not 0.0 <= self.ratio <= 1.0:
            raise GenpasError(f"transform {self.name}: ratio {self.ratio} is outside [0, 1]")

    def apply(self, seq: np.ndarray, rng: np.random.Generator, popularity_cdf: np.ndarray | None) -> np.ndarray:
        n = len(seq)
        count = int(np.floor(self.ratio * n))
        if self.name == "crop":
            keep = max(1, count)
            start = int(rng.integers(0, n - keep + 1))
            return seq[start : start + keep]
        if count == 0:
            return seq
        out = seq.copy()
        if self.name == "mask":
            out[rng.choice(n, count, replace=False)] = 0
        elif self.name == "reorder":
            start = int(rng.integers(0, n - count + 1))
            out[start : start + count] = rng.permutation(out[start : start + count])
        elif self.name == "insert":
            where = np.sort(rng.integers(0, n + 1, size=count))
            out = np.insert(out, where, out[rng.integers(0, n, size=count)])
        elif self.name == "substitute":
            if popularity_cdf is None:
                raise GenpasError("substitute needs the training popularity")
            drawn = np.searchsorted(popularity_cdf, rng.random(count) * popularity_cdf[-1], side="right")
            out[rng.choice(n, count, replace=False)] = drawn + 1  # item codes + 1 (0 is padding)
        return out


def parse_transforms(specs) -> tuple[Transform, ...]:
    """'crop:0.6' style strings (or (name, ratio) pairs) into Transforms."""
    out = []
    for spec in specs or ():
        if isinstance(spec, str):
            name, _, ratio = spec.partition(":")
            try:
                out.append(Transform(name.strip().lower(), float(ratio)))
            except ValueError:
                raise GenpasError(f"cannot read transform {spec!r}; write NAME:RATIO, e.g. crop:0.6") from None
        else:
            out.append(Transform(str(spec[0]), float(spec[1])))
    return tuple(out)


def apply_transforms(batch: dict, transforms, rng: np.random.Generator, popularity_cdf, max_len: int) -> dict:
    """Rewrite every row's input (pairs-mode batch: one target at the last input position)."""
    inputs, targets = batch["inputs"], batch["targets"]
    lengths = (inputs > 0).sum(1)  # before masking, padding only trails
    rows = []
    for r in range(len(inputs)):
        seq = inputs[r, : lengths[r]]
        for t in transforms:
            seq = t.apply(seq, rng, popularity_cdf)
        rows.append(seq[-max_len:])
    width = max(len(s) for s in rows)
    new_inputs = np.zeros((len(rows), width), dtype=np.int64)
    new_targets = np.full((len(rows), width), -1, dtype=np.int64)
    new_weights = np.zeros((len(rows), width), dtype=np.float32)
    for r, seq in enumerate(rows):
        new_inputs[r, : len(seq)] = seq
        new_targets[r, len(seq) - 1] = targets[r, lengths[r] - 1]
        new_weights[r, len(seq) - 1] = 1.0
    return {"inputs": new_inputs, "targets": new_targets, "weights": new_weights}
