"""Classic input transforms: each keeps the target, respects its ratio, and is seeded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from genpas.augment import genpas
from genpas.augment.batches import StreamConfig, TrainingStream
from genpas.augment.transforms import Transform, apply_transforms, parse_transforms
from genpas.data.store import SequenceStore
from genpas.errors import GenpasError

SEQ = np.arange(1, 11)  # item codes + 1


def test_each_transform_by_its_definition():
    rng = np.random.default_rng(0)
    crop = Transform("crop", 0.6).apply(SEQ, rng, None)
    assert len(crop) == 6 and np.array_equal(crop, np.arange(crop[0], crop[0] + 6))  # contiguous
    masked = Transform("mask", 0.3).apply(SEQ, rng, None)
    assert (masked == 0).sum() == 3 and np.array_equal(masked[masked > 0], SEQ[masked > 0])
    reordered = Transform("reorder", 0.5).apply(SEQ, rng, None)
    assert sorted(reordered) == list(SEQ) and (reordered != SEQ).sum() <= 5
    inserted = Transform("insert", 0.2).apply(SEQ, rng, None)
    assert len(inserted) == 12 and Counter(inserted) - Counter(SEQ.tolist()) and set(inserted) <= set(SEQ)
    cdf = np.cumsum(np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5.0]))  # all popularity on item code 12
    substituted = Transform("substitute", 0.4).apply(SEQ, rng, cdf)
    assert (substituted == 13).sum() == 4


def test_ratio_zero_is_the_identity_and_bad_specs_fail():
    for name in ("mask", "reorder", "insert", "substitute"):
        assert np.array_equal(Transform(name, 0.0).apply(SEQ, np.random.default_rng(0), np.ones(20)), SEQ)
    with pytest.raises(GenpasError):
        Transform("blur", 0.5)
    with pytest.raises(GenpasError):
        Transform("crop", 1.5)
    with pytest.raises(GenpasError):
        parse_transforms(["crop=0.5"])
    assert parse_transforms(["crop:0.6", ("mask", 0.2)]) == (Transform("crop", 0.6), Transform("mask", 0.2))


def test_batches_keep_their_targets():
    inputs = np.array([[1, 2, 3, 4, 0], [5, 6, 0, 0, 0]])
    targets = np.array([[-1, -1, -1, 9, -1], [-1, 8, -1, -1, -1]])
    batch = {"inputs": inputs, "targets": targets, "weights": (targets >= 0).astype(np.float32)}
    out = apply_transforms(batch, parse_transforms(["insert:0.5", "crop:0.8"]), np.random.default_rng(1), None, 4)
    for r, target in enumerate((9, 8)):
        n = (out["inputs"][r] > 0).sum()
        assert n <= 4 and out["targets"][r, n - 1] == target and out["weights"][r].sum() == 1


def toy_store():
    lengths = np.array([6, 9, 4])
    items = np.random.default_rng(0).integers(0, 7, size=lengths.sum())
    return SequenceStore(np.concatenate([[0], np.cumsum(lengths)]), items, np.zeros(len(items)),
                         np.array(["a", "b", "c"]), np.array([str(i) for i in range(7)]))


def test_stream_transforms_are_seeded_and_pairs_only():
    cfg = StreamConfig(mode="pairs", max_len=5, batch_size=8, seed=3, num_pairs=40, transforms=("mask:0.3", "crop:0.7"))
    a = [b["inputs"].tolist() for b in TrainingStream(toy_store(), genpas(1, 1, 0), cfg)]
    b = [b["inputs"].tolist() for b in TrainingStream(toy_store(), genpas(1, 1, 0), cfg)]
    assert a == b
    with pytest.raises(GenpasError, match="pairs"):
        TrainingStream(toy_store(), genpas(1, 1, 0), StreamConfig(mode="packed", transforms=("crop:0.5",)))
