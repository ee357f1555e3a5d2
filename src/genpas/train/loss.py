"""The training loss of every model and mode, and the compute a run spends (spec section 12).

Loss: sum over a batch's targets of weight x cross-entropy, divided by the number of rows (pairs or windows). A row's
weights sum to 1 (one pair's worth of loss), so pairs and packed windows are on one scale. The cross-entropy is over
the full catalogue by default; `SampledSoftmax` estimates it from N sampled negatives for large catalogues.

Compute is reported with every run, so that comparisons state what they hold equal:

    optimizer_steps     optimizer updates
    train_rows          rows trained on (pairs, or windows in packed mode), over all ranks
    train_targets       targets with positive weight
    effective_targets   sum over rows of (sum of w)^2 / sum of w^2: the number of equally weighted targets that
                        would carry as much information as the row's weighted ones (1 per pair; a packed window
                        with weights 1/m on m targets counts m, one with nearly all weight on one target about 1)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

COMPUTE_KEYS = ("optimizer_steps", "train_rows", "train_targets", "effective_targets")


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


def batch_counts(weights: torch.Tensor) -> torch.Tensor:
    """[rows, targets with positive weight, effective targets] of a batch's [rows, W] weights (float64, on the CPU:
    counted from the host copy of the batch, so counting never synchronises an accelerator)."""
    w = weights.detach().cpu().double()
    total, squares = w.sum(1), (w * w).sum(1)
    effective = torch.where(squares > 0, total * total / squares.clamp(min=1e-300), torch.zeros_like(total)).sum()
    return torch.stack([torch.tensor(float(len(w)), dtype=torch.float64), (w > 0).sum().double(), effective])


class SampledSoftmax:
    """Cross-entropy over the target and N negatives drawn from a proposal q (uniform or item popularity), shared by
    the batch, with the logQ correction: a negative's logit o_j becomes o_j - log(N q_j), the target's stays o_t, and
    negatives equal to the target are dropped. Then sum_j exp(o_j - log(N q_j)) estimates sum_{j != t} exp(o_j)
    without bias, so the loss tends to the full-softmax cross-entropy as N grows (tested).
    """

    def __init__(self, proposal: torch.Tensor, negatives: int):
        if negatives < 1:
            raise ValueError("negatives must be >= 1")
        self.proposal = proposal.double() / proposal.double().sum()
        self.negatives = int(negatives)
        self.log_nq = (self.proposal * self.negatives).log().float()

    def to(self, device) -> "SampledSoftmax":
        self.proposal, self.log_nq = self.proposal.to(device), self.log_nq.to(device)
        return self

    def __call__(self, hidden: torch.Tensor, targets: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        """Per-target loss for hidden states [T, D], targets [T] and output embeddings [I, D]."""
        negatives = torch.multinomial(self.proposal, self.negatives, replacement=True)
        positive = (hidden * embeddings[targets]).sum(-1, keepdim=True).float()
        logits = (hidden @ embeddings[negatives].T).float() - self.log_nq[negatives]
        logits = logits.masked_fill(negatives[None, :] == targets[:, None], -torch.inf)
        return torch.logsumexp(torch.cat([positive, logits], 1), 1) - positive[:, 0]


def weighted_loss(model, batch: dict, device, sampled: SampledSoftmax | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, batch_counts) of one batch; `sampled` replaces the full softmax (models with output_embeddings)."""
    inputs = batch["inputs"].to(device, non_blocking=True)
    weights = batch["weights"].to(device, non_blocking=True)
    targets = batch["targets"].to(device, non_blocking=True)
    if getattr(_unwrap(model), "generative", False):
        # An encoder-decoder (TIGER) scores one target per row (pairs mode): the row's weighted target.
        rows = torch.arange(len(inputs), device=device)
        last = weights.argmax(1)
        loss = model(inputs, targets[rows, last])
        return (loss * weights[rows, last]).sum() / inputs.shape[0], batch_counts(batch["weights"].amax(1)[:, None])
    counts = batch_counts(batch["weights"])
    times = batch.get("times")
    hidden = model(inputs) if times is None else model(inputs, times.to(device, non_blocking=True))
    selected = weights > 0
    if sampled is not None:
        ce = sampled(hidden[selected], targets[selected], _unwrap(model).output_embeddings())
    else:
        logits = _unwrap(model).scores(hidden[selected])
        ce = F.cross_entropy(logits.float(), targets[selected], reduction="none")
    return (ce * weights[selected]).sum() / inputs.shape[0], counts


@dataclass
class Compute:
    """Running totals of the compute keys (COMPUTE_KEYS)."""

    optimizer_steps: int = 0
    train_rows: int = 0
    train_targets: int = 0
    effective_targets: float = 0.0

    def add(self, steps: int, counts) -> None:
        rows, targets, effective = (float(x) for x in counts)
        self.optimizer_steps += int(steps)
        self.train_rows += int(round(rows))
        self.train_targets += int(round(targets))
        self.effective_targets += effective

    def as_dict(self) -> dict:
        return asdict(self)
