"""Semantic ids for generative retrieval (TIGER): every item becomes a short tuple of codes.

Residual k-means (RQ-KMeans): level 1 clusters the item embeddings into K codes, level 2 clusters the residuals
(embedding minus its level-1 centroid) into K codes, and so on for C levels. Items whose C codes coincide get one
more code, a running index among them, so that every item has a unique id of C + 1 codes. Similar items share
prefixes, which is what lets a decoder generalise across items.

Embeddings come from item text when there is any (see the TIGER issue) or, as here, from collaborative signal: a
truncated SVD of the item co-occurrence counts within a window of each training sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genpas.data.store import SequenceStore


def cooccurrence_embeddings(store: SequenceStore, dim: int = 32, window: int = 5, seed: int = 0) -> np.ndarray:
    """[num_items, dim] item embeddings: truncated SVD of symmetric co-occurrence counts within `window` steps."""
    items = store.items.astype(np.int64)
    user = store.user_index()
    rows, cols = [], []
    for lag in range(1, window + 1):
        same = user[lag:] == user[:-lag]
        rows.append(items[lag:][same])
        cols.append(items[:-lag][same])
    r = np.concatenate(rows + cols)
    c = np.concatenate(cols + rows)
    n = store.num_items
    index = torch.from_numpy(np.stack([r, c]))
    matrix = torch.sparse_coo_tensor(index, torch.ones(len(r)), (n, n), check_invariants=True).coalesce()
    matrix = torch.sparse_coo_tensor(matrix.indices(), torch.log1p(matrix.values()), (n, n),
                                     check_invariants=True)  # log damps the heaviest pairs
    torch.manual_seed(seed)
    q = min(dim, n - 1)
    u, s, _ = torch.svd_lowrank(matrix, q=q, niter=4)
    emb = (u * s.sqrt()).numpy()
    if q < dim:
        emb = np.pad(emb, ((0, 0), (0, dim - q)))
    return emb.astype(np.float32)


def kmeans(x: torch.Tensor, k: int, iters: int = 25, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with k-means++ seeding; returns (centroids [k, d], assignment [n]). Empty clusters are
    re-seeded with the points farthest from their centroid, so every code stays in use where the data allows."""
    g = torch.Generator().manual_seed(seed)
    n = len(x)
    k = min(k, n)
    centroids = x[torch.randint(n, (1,), generator=g)]
    for _ in range(1, k):  # k-means++: next centroid with probability ~ squared distance
        d2 = torch.cdist(x, centroids).min(1).values.pow(2)
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full((n,), 1.0 / n)
        centroids = torch.cat([centroids, x[torch.multinomial(probs, 1, generator=g)]])
    assign = torch.zeros(n, dtype=torch.long)
    for _ in range(iters):
        dist = torch.cdist(x, centroids)
        assign = dist.argmin(1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        new = sums / counts.clamp(min=1)[:, None]
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):
            far = dist.gather(1, assign[:, None]).flatten().argsort(descending=True)[: len(empty)]
            new[empty] = x[far]
        if torch.allclose(new, centroids):
            break
        centroids = new
    return centroids, torch.cdist(x, centroids).argmin(1)


@dataclass
class SemanticIds:
    codes: np.ndarray  # [num_items, levels + 1] int64; the last column de-duplicates
    codebook_size: int

    @property
    def levels(self) -> int:
        return self.codes.shape[1] - 1

    def stats(self) -> dict:
        """Code usage per level, collisions before de-duplication, and the de-duplication depth needed."""
        base = self.codes[:, :-1]
        _, counts = np.unique(base, axis=0, return_counts=True)
        return {
            "items": int(len(self.codes)),
            "levels": self.levels,
            "codebook_size": self.codebook_size,
            "codes_used_per_level": [int(len(np.unique(base[:, level]))) for level in range(self.levels)],
            "distinct_prefix_tuples": int(len(counts)),
            "items_in_collisions": int(counts[counts > 1].sum()),
            "max_dedup_code": int(self.codes[:, -1].max()),
        }


def rq_kmeans(embeddings: np.ndarray, levels: int = 3, codebook_size: int = 64, iters: int = 25,
              seed: int = 0) -> SemanticIds:
    """Residual k-means codes plus a de-duplication code (see the module docstring)."""
    x = torch.as_tensor(embeddings, dtype=torch.float32)
    residual = x.clone()
    columns = []
    for level in range(levels):
        centroids, assign = kmeans(residual, codebook_size, iters, seed + level)
        columns.append(assign.numpy())
        residual = residual - centroids[assign]
    codes = np.stack(columns, axis=1).astype(np.int64)
    # De-duplication: the running index of each item among those with the same code tuple (stable by item code).
    order = np.lexsort(codes.T[::-1])
    sorted_codes = codes[order]
    new_group = np.ones(len(codes), dtype=bool)
    new_group[1:] = np.any(sorted_codes[1:] != sorted_codes[:-1], axis=1)
    group_start = np.maximum.accumulate(np.where(new_group, np.arange(len(codes)), 0))
    dedup = np.empty(len(codes), dtype=np.int64)
    dedup[order] = np.arange(len(codes)) - group_start
    return SemanticIds(np.concatenate([codes, dedup[:, None]], axis=1), codebook_size)


class CodeTrie:
    """The set of valid semantic ids as per-level lookup tables, for constrained decoding.

    `allowed(prefixes)` gives, for a batch of code prefixes of one length, the boolean mask of codes that extend
    each prefix towards an existing item, so a beam search can never produce an id that is no item.
    """

    def __init__(self, codes: np.ndarray):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.width = int(self.codes.max()) + 1
        self._prefix_index = []  # per depth: dict prefix tuple -> sorted array of next codes
        for depth in range(self.codes.shape[1]):
            table: dict[tuple, list] = {}
            for row in self.codes:
                table.setdefault(tuple(row[:depth]), set()).add(int(row[depth]))
            self._prefix_index.append({k: np.array(sorted(v)) for k, v in table.items()})
        self._item_of = {tuple(row): item for item, row in enumerate(self.codes.tolist())}

    def allowed(self, prefixes: np.ndarray) -> np.ndarray:
        prefixes = np.asarray(prefixes, dtype=np.int64).reshape(len(prefixes), -1)
        depth = prefixes.shape[1]
        mask = np.zeros((len(prefixes), self.width), dtype=bool)
        table = self._prefix_index[depth]
        for row, prefix in enumerate(prefixes):
            nxt = table.get(tuple(prefix.tolist()))
            if nxt is not None:
                mask[row, nxt] = True
        return mask

    def item(self, full_code) -> int | None:
        return self._item_of.get(tuple(int(c) for c in full_code))
