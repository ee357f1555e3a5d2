"""TIGER: generative retrieval over semantic ids, in one file.

Every item is a short tuple of C codes (its semantic id, see semantic_ids.py). An encoder reads the codes of the input
items as one token sequence; a decoder generates the next item's codes one level at a time, attending to the encoder
(a T5-style encoder-decoder: pre-norm blocks, shared token embeddings, bidirectional encoder, causal decoder). Training
minimises the cross-entropy of the target's codes given the input (teacher forcing). Ranking runs a beam search whose
every step is restricted by a trie of the existing ids, so it can only produce real items; the items left in the
final beam are ranked by their sequence log-probability, every other item ranks below them.

Tokens: code c at level l is token 1 + l * V + c (V = codes per level, the same for every level), 0 is padding; the
decoder starts from a learned begin-of-sequence vector. The encoder reads either every code as a token (the paper's
layout) or, by default, one token per item, the sum of its code embeddings: C times fewer tokens, which is what
makes TIGER trainable on a CPU (docs/method.md "TIGER"). Input item codes arrive shifted by one (0 = padding) and
left-aligned, as everywhere in genpas; `rank_scores` returns [B, num_items] like SASRec, so one evaluator serves both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genpas.models import sasrec
from genpas.models.sasrec import explicit_attention, init_weights


@dataclass
class TIGERConfig:
    num_items: int
    code_len: int  # C: codes per item, the de-duplication code included
    vocab: int  # V: codes per level
    dim: int = 128
    layers: int = 2  # encoder layers; the decoder has as many
    heads: int = 4
    dropout: float = 0.1
    max_len: int = 20  # input items
    encoder_input: str = "items"  # "codes": every code of every input item is a token (max_len * code_len tokens,
    #                               as in the paper); "items": one token per input item, the sum of its code
    #                               embeddings (code_len times fewer tokens: what makes TIGER CPU-sized)
    beam: int = 20  # beam width when ranking; at least the largest K of the metrics

    def validate(self) -> None:
        from genpas.errors import GenpasError

        if self.dim % self.heads:
            raise GenpasError(f"--dim {self.dim} must be a multiple of --heads {self.heads}")
        if min(self.dim, self.layers, self.heads, self.max_len, self.beam, self.code_len, self.vocab) < 1:
            raise GenpasError("dim, layers, heads, max_len, beam and the semantic-id sizes must all be >= 1")
        if not 0 <= self.dropout < 1:
            raise GenpasError(f"--dropout must lie in [0, 1), got {self.dropout}")
        if self.encoder_input not in ("items", "codes"):
            raise GenpasError(f"--encoder-input must be items or codes, got {self.encoder_input!r}")


class Attention(nn.Module):
    """Multi-head attention of queries x over keys/values `context` (x itself for self-attention)."""

    def __init__(self, cfg: TIGERConfig):
        super().__init__()
        self.heads = cfg.heads
        self.q = nn.Linear(cfg.dim, cfg.dim)
        self.kv = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, context=None, mask=None, causal: bool = False):
        context = x if context is None else context
        B, T, D = x.shape
        S = context.shape[1]
        q = self.q(x).view(B, T, self.heads, D // self.heads).transpose(1, 2)
        k, v = (t.view(B, S, self.heads, D // self.heads).transpose(1, 2) for t in self.kv(context).split(D, dim=2))
        if x.device.type == "cpu" and sasrec.cpu_autocast():  # as in SASRec: the fused kernel's bf16 backward is slow
            y = explicit_attention(q, k, v, mask, causal)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.drop(self.proj(y.transpose(1, 2).reshape(B, T, D)))


class Block(nn.Module):
    """Pre-norm block: self-attention, then (decoder only) cross-attention to the encoder, then a feed-forward."""

    def __init__(self, cfg: TIGERConfig, cross: bool):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.dim)
        self.self_attn = Attention(cfg)
        self.cross = cross
        if cross:
            self.ln_cross = nn.LayerNorm(cfg.dim)
            self.cross_attn = Attention(cfg)
        self.ln2 = nn.LayerNorm(cfg.dim)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, 4 * cfg.dim), nn.GELU(), nn.Linear(4 * cfg.dim, cfg.dim),
                                 nn.Dropout(cfg.dropout))

    def forward(self, x, self_mask=None, causal=False, memory=None, memory_mask=None):
        x = x + self.self_attn(self.ln1(x), mask=self_mask, causal=causal)
        if self.cross:
            x = x + self.cross_attn(self.ln_cross(x), memory, mask=memory_mask)
        return x + self.mlp(self.ln2(x))


def build_trie(codes: np.ndarray, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """The valid ids as a transition table: next_node[node, code] (-1: no item continues that way) and
    item_of[node] (-1 for inner nodes). Node 0 is the root; nodes of depth d are the distinct d-code prefixes."""
    codes = np.asarray(codes, dtype=np.int64)
    n, length = codes.shape
    parents, edges = [], []  # of every node but the root: its parent and the code leading to it
    node = np.zeros(n, dtype=np.int64)  # each item's node at the current depth
    count = 1
    for depth in range(length):
        unique, inverse = np.unique(np.stack([node, codes[:, depth]], axis=1), axis=0, return_inverse=True)
        parents.append(unique[:, 0])
        edges.append(unique[:, 1])
        node = count + inverse.reshape(-1)
        count += len(unique)
    next_node = np.full((count, vocab), -1, dtype=np.int64)
    next_node[np.concatenate(parents), np.concatenate(edges)] = np.arange(1, count)
    item_of = np.full(count, -1, dtype=np.int64)
    item_of[node] = np.arange(n)  # full ids are unique: one leaf per item
    return next_node, item_of


class TIGER(nn.Module):
    generative = True  # trained by forward(inputs, target_items) -> per-row loss, not by scores over items

    def __init__(self, cfg: TIGERConfig, item_codes: np.ndarray):
        super().__init__()
        cfg.validate()
        codes = np.asarray(item_codes, dtype=np.int64)
        if codes.shape != (cfg.num_items, cfg.code_len) or codes.min() < 0 or codes.max() >= cfg.vocab:
            raise ValueError(f"item codes must be [{cfg.num_items}, {cfg.code_len}] in [0, {cfg.vocab})")
        if len(np.unique(codes, axis=0)) != len(codes):
            raise ValueError("semantic ids must be unique per item (add a de-duplication code)")
        self.cfg = cfg
        C, V = cfg.code_len, cfg.vocab
        # Token of each (item + 1, level): row 0 is padding; buffers travel with the checkpoint.
        tokens = np.zeros((cfg.num_items + 1, C), dtype=np.int64)
        tokens[1:] = 1 + np.arange(C) * V + codes
        self.register_buffer("item_tokens", torch.from_numpy(tokens))
        next_node, item_of = build_trie(codes, V)
        self.register_buffer("trie_next", torch.from_numpy(next_node))
        self.register_buffer("trie_item", torch.from_numpy(item_of))
        # Each item's node at every depth and the number of items below each node, so that a beam can pass over
        # prefixes whose items are all banned (derived from the codes, hence not saved: checkpoints stay as they were).
        paths = np.empty_like(codes)
        at = np.zeros(len(codes), dtype=np.int64)
        for depth in range(C):
            at = paths[:, depth] = next_node[at, codes[:, depth]]
        self.register_buffer("item_path", torch.from_numpy(paths), persistent=False)
        self.register_buffer("items_below", torch.from_numpy(np.bincount(paths.ravel(), minlength=len(item_of))),
                             persistent=False)
        self.depth_first = paths.min(0).tolist()  # nodes of one depth are numbered consecutively
        self.depth_count = (paths.max(0) - paths.min(0) + 1).tolist()
        self.tok_emb = nn.Embedding(1 + C * V, cfg.dim, padding_idx=0)
        self.enc_pos = nn.Embedding(cfg.max_len * C, cfg.dim)
        self.dec_pos = nn.Embedding(C, cfg.dim)
        self.bos = nn.Parameter(torch.zeros(cfg.dim))
        self.drop = nn.Dropout(cfg.dropout)
        self.encoder = nn.ModuleList(Block(cfg, cross=False) for _ in range(cfg.layers))
        self.decoder = nn.ModuleList(Block(cfg, cross=True) for _ in range(cfg.layers))
        self.ln_enc = nn.LayerNorm(cfg.dim)
        self.ln_dec = nn.LayerNorm(cfg.dim)
        self.head = nn.Parameter(torch.empty(C, cfg.dim, V))  # one output layer per level
        self.apply(init_weights)
        nn.init.normal_(self.head, std=0.02)
        nn.init.normal_(self.bos, std=0.02)

    # ------------------------------------------------------------------------------------------------------------
    def encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states [B, T, D] of left-aligned item inputs [B, W] (T = W items, or W * C codes), and the key
        mask [B, 1, 1, T]."""
        inputs = inputs[:, -self.cfg.max_len:] if inputs.shape[1] > self.cfg.max_len else inputs
        tokens = self.item_tokens[inputs]  # [B, W, C]; padding items give padding tokens (zero embeddings)
        if self.cfg.encoder_input == "items":
            x = self.tok_emb(tokens).sum(2)
            mask = (inputs > 0)[:, None, None, :]
        else:
            tokens = tokens.flatten(1)
            x = self.tok_emb(tokens)
            mask = (tokens > 0)[:, None, None, :]
        x = self.drop(x + self.enc_pos.weight[: x.shape[1]])
        for block in self.encoder:
            x = block(x, self_mask=mask)
        return self.ln_enc(x), mask

    def decode(self, prefix_tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> torch.Tensor:
        """Logits [B, t + 1, V] for levels 0..t given the first t code tokens of the target [B, t]."""
        B, t = prefix_tokens.shape
        x = torch.cat([self.bos.expand(B, 1, -1), self.tok_emb(prefix_tokens)], dim=1)
        x = self.drop(x + self.dec_pos.weight[: t + 1])
        for block in self.decoder:
            x = block(x, causal=True, memory=memory, memory_mask=memory_mask)
        x = self.ln_dec(x)
        return torch.einsum("btd,tdv->btv", x, self.head[: t + 1])

    def forward(self, inputs: torch.Tensor, target_items: torch.Tensor) -> torch.Tensor:
        """Per-row loss [B]: the summed cross-entropy of the target item's C codes (teacher forcing)."""
        memory, mask = self.encode(inputs)
        target_tokens = self.item_tokens[target_items + 1]  # [B, C]
        logits = self.decode(target_tokens[:, :-1], memory, mask)
        V = self.cfg.vocab
        target_codes = (target_tokens - 1) % V
        ce = F.cross_entropy(logits.float().reshape(-1, V), target_codes.reshape(-1), reduction="none")
        return ce.view(len(inputs), -1).sum(1)

    # ------------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def beam_search(self, inputs: torch.Tensor, beam: int | None = None, banned: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top `beam` items per row by log-probability, trie-constrained: (items [B, beam], log-probs [B, beam]).
        Rows with fewer valid continuations than `beam` are padded with item -1 and -inf. `banned` ([B, num_items]
        bool): items never generated; at every level the beam passes over prefixes with no other item below them, so
        its places go to items that can be generated."""
        beam = beam or self.cfg.beam
        C, V = self.cfg.code_len, self.cfg.vocab
        B = len(inputs)
        if banned is not None and (banned.shape != (B, self.cfg.num_items) or banned.dtype != torch.bool):
            raise ValueError(f"banned must be a bool [{B}, {self.cfg.num_items}] mask, got {banned.dtype} "
                             f"{list(banned.shape)}")
        memory, mask = self.encode(inputs)
        node = torch.zeros(B, 1, dtype=torch.long, device=inputs.device)
        score = torch.zeros(B, 1, device=inputs.device)
        prefix = torch.zeros(B, 1, 0, dtype=torch.long, device=inputs.device)
        for level in range(C):
            width = node.shape[1]
            logits = self.decode(prefix.reshape(B * width, level), memory.repeat_interleave(width, 0),
                                 mask.repeat_interleave(width, 0))[:, -1]
            logp = F.log_softmax(logits.float(), dim=-1).view(B, width, V)
            nxt = self.trie_next[node]  # [B, width, V]
            allowed = nxt >= 0
            if banned is not None:
                allowed = allowed & self._unbanned_below(banned, level, nxt)
            total = torch.where(allowed, score[..., None] + logp, -torch.inf).view(B, width * V)
            top = total.topk(min(beam, width * V), dim=1)
            parent = top.indices // V
            code = top.indices % V
            score = top.values
            node = nxt.view(B, width * V).gather(1, top.indices).clamp(min=0)  # dead beams keep -inf scores
            token = 1 + level * V + code
            prefix = torch.cat([prefix.gather(1, parent[..., None].expand(-1, -1, level)), token[..., None]], dim=2)
        items = torch.where(torch.isfinite(score), self.trie_item[node], -1)
        return items, score

    def _unbanned_below(self, banned: torch.Tensor, level: int, nodes: torch.Tensor) -> torch.Tensor:
        """Whether each node of depth level + 1 in `nodes` ([B, ...], -1 for none) has an item below it that its
        row does not ban: fewer banned items below it than items."""
        first, count = self.depth_first[level], self.depth_count[level]
        B = len(banned)
        hits = torch.zeros(B, count, dtype=torch.int32, device=banned.device)
        hits.scatter_add_(1, (self.item_path[:, level] - first).expand(B, -1), banned.int())
        local = (nodes - first).clamp(0, count - 1).view(B, -1)
        return (hits.gather(1, local) < self.items_below[first:first + count][local]).view(nodes.shape)

    def rank_scores(self, inputs: torch.Tensor, chunk: int = 128, banned: torch.Tensor | None = None) -> torch.Tensor:
        """[B, num_items]: the log-probability of each item left in the beam, -inf for every other item (and for the
        `banned` ones, which the beam passes over)."""
        out = []
        for lo in range(0, len(inputs), chunk):
            rows = slice(lo, lo + chunk)
            items, score = self.beam_search(inputs[rows], banned=None if banned is None else banned[rows])
            dense = torch.full((len(items), self.cfg.num_items), -torch.inf, device=inputs.device)
            valid = items >= 0
            dense.scatter_reduce_(1, items.clamp(min=0), torch.where(valid, score, -torch.inf), reduce="amax")
            out.append(dense)
        return torch.cat(out)
