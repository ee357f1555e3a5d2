"""The popularity baseline: every user gets the items ranked by their training frequency (a sanity floor)."""

from __future__ import annotations

import torch
from torch import nn


class Popularity(nn.Module):
    def __init__(self, counts: torch.Tensor):
        super().__init__()
        self.register_buffer("counts", counts.float())

    def rank_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.counts.expand(len(inputs), -1)
