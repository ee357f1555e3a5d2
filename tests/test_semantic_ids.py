"""Semantic ids: unique codes for every item, prefixes shared by similar items, a trie that admits only items."""

from __future__ import annotations

import numpy as np
import torch

from genpas.data.synth import SynthConfig, synthesize_store
from genpas.models.semantic_ids import CodeTrie, cooccurrence_embeddings, kmeans, rq_kmeans


def test_kmeans_separates_obvious_clusters():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g) for c in centers])
    _, assign = kmeans(x, 3, seed=1)
    for block in range(3):
        assert len(set(assign[block * 50: (block + 1) * 50].tolist())) == 1
    assert len(set(assign.tolist())) == 3


def test_every_item_gets_a_unique_id_and_stats_add_up():
    rng = np.random.default_rng(0)
    emb = np.repeat(rng.normal(size=(20, 8)), 3, axis=0)  # triplicated items: guaranteed collisions
    ids = rq_kmeans(emb, levels=2, codebook_size=4, seed=0)
    assert ids.codes.shape == (60, 3)
    assert len({tuple(r) for r in ids.codes.tolist()}) == 60
    stats = ids.stats()
    assert stats["items_in_collisions"] >= 3 and stats["max_dedup_code"] >= 2
    assert all(1 <= used <= 4 for used in stats["codes_used_per_level"])


def test_trie_admits_exactly_the_existing_ids():
    codes = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0]])
    trie = CodeTrie(codes)
    assert trie.allowed(np.zeros((1, 0))).tolist() == [[True, False, True]]
    assert trie.allowed(np.array([[0], [2], [1]])).tolist() == [[False, True, False], [True, False, False],
                                                                 [False, False, False]]
    assert trie.allowed(np.array([[0, 1]])).tolist() == [[True, True, False]]
    assert trie.item([0, 1, 1]) == 1 and trie.item([1, 1, 1]) is None


def test_cooccurrence_embeddings_put_successors_close():
    store = synthesize_store(SynthConfig(users=400, items=60, mean_length=20, p_transition=0.9, zipf=0.2, seed=0))
    emb = cooccurrence_embeddings(store, dim=16)
    assert emb.shape == (60, 16) and np.isfinite(emb).all()
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-9)
    sims = unit @ unit.T
    items = store.items
    same_user = np.repeat(np.arange(store.num_users), store.lengths)
    follow = same_user[1:] == same_user[:-1]
    pair_sim = sims[items[:-1][follow], items[1:][follow]].mean()
    assert pair_sim > sims[np.triu_indices(60, 1)].mean() + 0.1  # consecutive items are more alike than average
