"""The learning-rate schedule, as a factor of the base rate per optimizer step: a linear warm-up over `warmup`
steps, then constant, or with `cosine` a cosine decay to zero at step `total`."""

from __future__ import annotations

import math


def lr_lambda(warmup: int, total: int, cosine: bool):
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        if not cosine:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor
