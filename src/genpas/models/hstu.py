"""HSTU: Hierarchical Sequential Transduction Units (Zhai et al., "Actions Speak Louder than Words", ICML'24), in one
file, as a causal next-item model with the same interface as SASRec.

A layer, on the residual stream x [B, W, D]:

    U, V, Q, K = split(SiLU(Linear(LayerNorm(x))))                 one projection gives all four, per head
    A          = SiLU(Q K^T / sqrt(d_qk) + rab_pos(i - j) + rab_time(bucket(t*_i - t_j))) / L,   zero where j > i
    x          = x + Linear(Dropout(LayerNorm(A V) * U))

Attention is pointwise (no softmax): each weight measures an interaction's intensity on its own, and the sum is
normalised by the maximum length L, a constant, so an output never depends on how far a batch is padded. The relative
attention bias has a position part, learned per offset i - j in [0, L), and a time part, learned per log-bucket of
t*_i - t_j, where t_j is the time of input item j and t*_i the time of the event predicted at position i (the request
time: at evaluation the held-out target's time, as in the published model). Inputs are left-aligned like SASRec's
(position 0 = the input's first item, padding after the items): a relative bias depends on i - j only, so packed
windows give every target exactly its pair-mode input, and causal attention never lets a real position see padding.

genpas choices where the paper leaves room: pre-norm residual blocks; the output head, embedding scaling and loss are
SASRec's (tied item embeddings, full softmax); time buckets floor(ln(1 + |dt|) / 0.3), the last bucket holding
everything beyond (with 128 buckets, about 1.3e16 time units); no absolute position embedding (the bias carries
position).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genpas.models.sasrec import ItemHead, init_weights

TIME_BUCKET_SCALE = 0.3  # bucket = floor(ln(1 + |dt|) / scale)


@dataclass
class HSTUConfig:
    num_items: int
    dim: int = 64  # embedding and residual width
    layers: int = 2
    heads: int = 2
    attention_dim: int = 32  # per head, of Q and K
    linear_dim: int = 32  # per head, of U and V
    dropout: float = 0.2
    max_len: int = 50
    time_buckets: int = 128
    tied: bool = True

    def validate(self) -> None:
        from genpas.errors import GenpasError

        if min(self.dim, self.layers, self.heads, self.attention_dim, self.linear_dim, self.max_len,
               self.num_items, self.time_buckets) < 1:
            raise GenpasError("dim, layers, heads, attention_dim, linear_dim, max_len, time_buckets and the number of "
                              "items must all be >= 1")
        if not 0 <= self.dropout < 1:
            raise GenpasError(f"--dropout must lie in [0, 1), got {self.dropout}")


def time_buckets(dt: torch.Tensor, buckets: int) -> torch.Tensor:
    """Log-scale bucket of each time difference (any unit), in [0, buckets)."""
    return (torch.log1p(dt.abs()) / TIME_BUCKET_SCALE).floor().clamp(0, buckets - 1).long()


class RelativeBias(nn.Module):
    """rab[b, i, j] = w_pos[i - j] + w_time[bucket(t*_i - t_j)], shared by the heads of a layer."""

    def __init__(self, cfg: HSTUConfig):
        super().__init__()
        self.buckets = cfg.time_buckets
        self.pos = nn.Parameter(torch.zeros(cfg.max_len))
        self.time = nn.Parameter(torch.zeros(cfg.time_buckets))

    def forward(self, times: torch.Tensor | None, W: int) -> torch.Tensor:
        """[B or 1, W, W] for key times times[:, :W] and query (target) times times[:, 1:W + 1]."""
        i = torch.arange(W, device=self.pos.device)
        offset = (i[:, None] - i[None, :]).clamp(min=0)  # j > i is masked anyway
        bias = self.pos[offset][None]
        if times is not None:
            dt = times[:, 1:W + 1, None] - times[:, None, :W]
            bias = bias + self.time[time_buckets(dt, self.buckets)]
        return bias


class HSTULayer(nn.Module):
    def __init__(self, cfg: HSTUConfig):
        super().__init__()
        self.cfg = cfg
        h, a, v = cfg.heads, cfg.attention_dim, cfg.linear_dim
        self.norm_in = nn.LayerNorm(cfg.dim)
        self.uvqk = nn.Linear(cfg.dim, h * (2 * v + 2 * a))
        self.norm_attn = nn.LayerNorm(h * v)
        self.out = nn.Linear(h * v, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.bias = RelativeBias(cfg)

    def forward(self, x: torch.Tensor, times: torch.Tensor | None) -> torch.Tensor:
        B, W, _ = x.shape
        h, a, v = self.cfg.heads, self.cfg.attention_dim, self.cfg.linear_dim
        u, val, q, k = F.silu(self.uvqk(self.norm_in(x))).split([h * v, h * v, h * a, h * a], dim=2)
        q, k, val = (t.view(B, W, h, -1).transpose(1, 2) for t in (q, k, val))
        logits = q @ k.transpose(-1, -2) / math.sqrt(a) + self.bias(times, W)[:, None]
        causal = torch.ones(W, W, dtype=torch.bool, device=x.device).tril()
        weights = F.silu(logits).masked_fill(~causal, 0.0) / self.cfg.max_len
        mixed = (weights @ val).transpose(1, 2).reshape(B, W, h * v)
        return x + self.drop(self.out(self.norm_attn(mixed) * u))


class HSTU(ItemHead, nn.Module):
    """Stacked HSTU layers over item embeddings; `scores` and `rank_scores` as in SASRec.

    Forward takes `times` [B, W + 1]: the times of the W input items and of the event after the last one (the
    predicted event of the last position); padding positions may hold any time. Without times the time bias is off.
    """

    needs_times = True

    def __init__(self, cfg: HSTUConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.item_emb = nn.Embedding(cfg.num_items + 1, cfg.dim, padding_idx=0)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(HSTULayer(cfg) for _ in range(cfg.layers))
        self.norm_out = nn.LayerNorm(cfg.dim)
        self.out = None if cfg.tied else nn.Linear(cfg.dim, cfg.num_items, bias=False)
        self.apply(init_weights)

    def forward(self, inputs: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states [B, W, D] for left-aligned inputs [B, W] (W <= max_len)."""
        x = self.emb_drop(self.item_emb(inputs) * math.sqrt(self.cfg.dim))
        if times is not None:
            times = times.float()
        for layer in self.layers:
            x = layer(x, times)
        return self.norm_out(x)

    def rank_scores(self, inputs: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
        lengths = (inputs > 0).sum(1).clamp(min=1)
        hidden = self(inputs, times)
        return self.scores(hidden[torch.arange(len(inputs), device=inputs.device), lengths - 1])
