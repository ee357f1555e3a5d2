"""SASRec: a causal self-attention next-item model over item ids, in one file.

Input: item codes + 1 ([B, W], 0 = padding), left-aligned, so position 0 is the input's first item and padding only
ever follows real items. Causal attention then never lets a real position see padding, so no padding mask is needed.
Output: one hidden state per position; `scores` turns hidden states into logits over all items (softmax
cross-entropy over the full catalogue, no negative sampling). With `tied=True` the output layer is the input item
embedding table (minus the padding row), as in the original SASRec.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class SASRecConfig:
    num_items: int
    dim: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2  # on embeddings and residual branches
    max_len: int = 50
    tied: bool = True  # output layer = input item embeddings
    learned_positions: bool = True  # False: fixed sinusoidal positions
    attn_dropout: float = 0.0  # on attention probabilities; off by default: its [B, H, W, W] masks cost a quarter
    #                            of a CPU step, for no measurable gain here

    def validate(self) -> None:
        from genpas.errors import GenpasError

        if self.dim % self.heads:
            raise GenpasError(f"--dim {self.dim} must be a multiple of --heads {self.heads}")
        if min(self.dim, self.layers, self.heads, self.max_len, self.num_items) < 1:
            raise GenpasError("dim, layers, heads, max_len and the number of items must all be >= 1")
        if not 0 <= self.dropout < 1:
            raise GenpasError(f"--dropout must lie in [0, 1), got {self.dropout}")


def cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


def explicit_attention(q, k, v, mask=None, causal: bool = False, dropout: float = 0.0) -> torch.Tensor:
    """Softmax attention as two matrix products (bf16 under autocast) around a float32 softmax; `mask` (bool, True
    where a query may look, broadcast to [B, H, T, S]) and `causal` as in F.scaled_dot_product_attention. Under CPU
    autocast this replaces the fused kernel, whose bf16 backward is several times slower than its float32 one at
    these sizes (docs/performance.md)."""
    scores = (q @ k.transpose(-1, -2)).float() * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        T, S = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(T, S, dtype=torch.bool, device=q.device).triu(1), -torch.inf)
    if mask is not None:
        scores = scores.masked_fill(~mask, -torch.inf)
    weights = F.dropout(scores.softmax(-1).nan_to_num(0.0), dropout)  # a query with no key to see: zeros, as SDPA
    return weights.to(v.dtype) @ v


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.heads = cfg.heads
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.attn_dropout = cfg.attn_dropout
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, W, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)
        q, k, v = (t.view(B, W, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        dropout = self.attn_dropout if self.training else 0.0
        if x.device.type == "cpu" and cpu_autocast():
            y = explicit_attention(q, k, v, causal=True, dropout=dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, W, D)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.dim)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.dim, 4 * cfg.dim), nn.GELU(), nn.Linear(4 * cfg.dim, cfg.dim), nn.Dropout(cfg.dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights, zero biases, a zero padding embedding (shared by SASRec and TIGER)."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()


def sinusoidal(max_len: int, dim: int) -> torch.Tensor:
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class ItemHead:
    """The output head shared by the item-id models (SASRec, HSTU): logits over all items from a hidden state, with the
    item embedding table as output layer when tied (`self.item_emb`, row 0 = padding) or an untied `self.out`."""

    def output_embeddings(self) -> torch.Tensor:
        """[num_items, D]: scores(h) = h @ output_embeddings().T (what a sampled softmax needs)."""
        return self.out.weight if self.out is not None else self.item_emb.weight[1:]

    def scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the real items [..., num_items] (column i = item code i)."""
        return hidden @ self.output_embeddings().T


class SASRec(ItemHead, nn.Module):
    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.item_emb = nn.Embedding(cfg.num_items + 1, cfg.dim, padding_idx=0)
        if cfg.learned_positions:
            self.pos_emb = nn.Embedding(cfg.max_len, cfg.dim)
        else:
            self.register_buffer("pos_table", sinusoidal(cfg.max_len, cfg.dim), persistent=False)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.dim)
        self.out = None if cfg.tied else nn.Linear(cfg.dim, cfg.num_items, bias=False)
        self.apply(init_weights)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, W, D] for left-aligned inputs [B, W] (W <= max_len)."""
        W = inputs.shape[1]
        pos = self.pos_emb.weight[:W] if self.cfg.learned_positions else self.pos_table[:W]
        x = self.item_emb(inputs) * math.sqrt(self.cfg.dim) + pos
        x = self.emb_drop(x)
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x)


    def last_hidden(self, inputs: torch.Tensor) -> torch.Tensor:
        """The hidden state at each row's last real item (for ranking the next item)."""
        lengths = (inputs > 0).sum(1).clamp(min=1)
        hidden = self(inputs)
        return hidden[torch.arange(len(inputs), device=inputs.device), lengths - 1]

    def rank_scores(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.scores(self.last_hidden(inputs))
