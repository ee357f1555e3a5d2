"""Top-K recommendations: the model's own ranking of the whole history, history excluded, ties by item code, the data's
ids in every format, and one error line for each bad input."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from genpas.data.store import SequenceStore
from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.errors import GenpasError
from genpas.models import Popularity, SASRec, SASRecConfig
from genpas.train.recommend import recommend, user_codes, write_recommendations


def _store(lengths=(5, 9, 3, 1), items=11, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.array(lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    codes = rng.integers(0, items, lengths.sum())
    times = np.cumsum(rng.integers(1, 1000, lengths.sum())).astype(np.int64)
    return SequenceStore(offsets, codes, times, np.array([f"u{i}" for i in range(len(lengths))], dtype=object),
                         np.array([f"item{i}" for i in range(items)], dtype=object))


def _one_user_scores(model, store, u, max_len, times=False, at=None):
    seq = store.sequence(u)[-max_len:]
    x = torch.from_numpy(seq.astype(np.int64) + 1)[None]
    if not times:
        return model.rank_scores(x)[0].float()
    t = store.times[store.offsets[u]:store.offsets[u + 1]][-max_len:]
    t = np.append(t, t[-1] if at is None else at) - t[0]  # the request: at the last event's time unless told
    return model.rank_scores(x, torch.from_numpy(t.astype(np.float32))[None])[0].float()


@pytest.mark.parametrize("exclude", [True, False])
def test_lists_are_the_models_ranking_of_the_whole_history(exclude):
    store = _store()
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(store.num_items, dim=16, layers=1, heads=2, dropout=0.0, max_len=4)).eval()
    recs = recommend(model, store, np.arange(store.num_users), max_len=4, k=5, exclude_history=exclude,
                     batch_size=2)  # batches mix users of other lengths
    with torch.no_grad():
        for row, u in enumerate(recs.users):
            scores = _one_user_scores(model, store, u, 4)
            if exclude:
                scores[torch.from_numpy(store.sequence(u).astype(np.int64))] = -torch.inf
            order = torch.sort(scores, descending=True, stable=True).indices[:5].numpy()
            ranked = np.isfinite(scores[order].numpy())  # a user with 9 events may leave fewer than 5 items
            np.testing.assert_array_equal(recs.items[row], np.where(ranked, order, -1))
            np.testing.assert_allclose(recs.scores[row], scores[order].numpy(), rtol=1e-5, atol=1e-6)
            if exclude:  # the whole history is excluded, not only the last max_len items the model reads
                assert not set(recs.items[row]) & set(store.sequence(u).tolist())


def test_batches_shrink_for_large_catalogues_without_changing_the_lists(monkeypatch):
    import genpas.train.recommend as module

    store = _store(lengths=(5, 9, 3, 1, 7, 2), items=11)
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(store.num_items, dim=16, layers=1, heads=2, dropout=0.0, max_len=4)).eval()
    whole = recommend(model, store, np.arange(store.num_users), max_len=4, k=5)
    monkeypatch.setattr(module, "SCORE_BYTES", 16 * store.num_items * 2)  # room for two users a batch
    calls = []
    real = model.rank_scores
    monkeypatch.setattr(model, "rank_scores", lambda x: calls.append(len(x)) or real(x))
    cut = recommend(model, store, np.arange(store.num_users), max_len=4, k=5)
    assert calls == [2, 2, 2]
    np.testing.assert_array_equal(cut.items, whole.items)
    np.testing.assert_allclose(cut.scores, whole.scores, rtol=1e-6)


def test_hstu_is_asked_at_the_last_events_time():
    from genpas.models.hstu import HSTU, HSTUConfig, RelativeBias

    store = _store()
    torch.manual_seed(0)
    model = HSTU(HSTUConfig(store.num_items, dim=16, layers=1, heads=2, attention_dim=8, linear_dim=8, dropout=0.0,
                            max_len=6, time_buckets=16)).eval()
    for module in model.modules():  # time biases start at zero: give them weight, so that times matter
        if isinstance(module, RelativeBias):
            torch.nn.init.normal_(module.time, std=1.0)
    recs = recommend(model, store, np.array([1, 0, 2]), max_len=6, k=3, exclude_history=False)
    with torch.no_grad():
        for row, u in enumerate(recs.users):
            scores = _one_user_scores(model, store, u, 6, times=True)
            np.testing.assert_array_equal(recs.items[row], torch.sort(scores, descending=True, stable=True).indices[:3])
    # Asked at a later time: the same as a model given that time after the last input, and not what it was before.
    at = float(store.times.max() + 10**6)
    later = recommend(model, store, np.array([1, 0, 2]), max_len=6, k=3, exclude_history=False, request_time=at)
    with torch.no_grad():
        for row, u in enumerate(later.users):
            scores = _one_user_scores(model, store, u, 6, times=True, at=at)
            np.testing.assert_allclose(later.scores[row], torch.sort(scores, descending=True).values[:3], rtol=1e-5)
    assert not np.allclose(later.scores, recs.scores)
    with pytest.raises(GenpasError, match="before the last event of user 'u1'"):
        recommend(model, store, np.array([0, 1]), max_len=6, k=3, request_time=float(store.times[0]))
    with pytest.raises(GenpasError, match="--at must be a finite time"):
        recommend(model, store, np.array([0, 1]), max_len=6, k=3, request_time=float("nan"))
    with pytest.raises(GenpasError, match="reads no event times"):
        recommend(Popularity(torch.ones(store.num_items)), store, np.array([0]), max_len=6, k=3, request_time=at)


def test_ties_go_by_item_code_and_exhausted_catalogues_leave_empty_slots():
    store = _store(lengths=(3, 2), items=4)
    model = Popularity(torch.tensor([2, 5, 5, 2]))  # items 1 and 2 tie, and items 0 and 3
    recs = recommend(model, store, np.array([0, 1]), max_len=10, k=4, exclude_history=False)
    np.testing.assert_array_equal(recs.items, [[1, 2, 0, 3], [1, 2, 0, 3]])
    recs = recommend(model, store, np.array([0, 1]), max_len=10, k=4, exclude_history=True)
    for row, u in enumerate(recs.users):
        unseen = [i for i in (1, 2, 0, 3) if i not in set(store.sequence(u).tolist())]
        assert recs.items[row].tolist() == unseen + [-1] * (4 - len(unseen))
        assert np.isneginf(recs.scores[row][len(unseen):]).all()
    assert recs.count == (recs.items >= 0).sum() == 2 * 4 - sum(len(set(store.sequence(u).tolist())) for u in (0, 1))


@pytest.mark.parametrize("seed", range(5))
def test_top_k_is_a_stable_sort_cut_at_k(seed):
    from genpas.train.recommend import top_k

    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.integers(0, 4, (7, 50)).astype(np.float32))  # many ties
    scores[rng.random((7, 50)) < 0.3] = -torch.inf
    scores[0, :] = -torch.inf  # a row with nothing to rank
    scores[1, 3:] = -torch.inf  # fewer finite scores than k
    for k in (1, 5, 17, 50):
        index, values = top_k(scores, k)
        expected = torch.sort(scores, dim=1, descending=True, stable=True)
        np.testing.assert_array_equal(index, expected.indices[:, :k].numpy())
        np.testing.assert_array_equal(values, expected.values[:, :k].numpy())


def test_user_ids_are_matched_as_spelled_and_refused_when_unknown_or_repeated():
    store = _store()
    assert user_codes(store, ["u2", "u0"]).tolist() == [2, 0]
    assert user_codes(store, None).tolist() == [0, 1, 2, 3]
    with pytest.raises(GenpasError, match="1 of 2 ids are not users.*'u9'"):
        user_codes(store, ["u0", "u9"])
    with pytest.raises(GenpasError, match="'u1' is listed twice"):
        user_codes(store, ["u1", "u0", "u1"])
    with pytest.raises(GenpasError, match="no user ids"):
        user_codes(store, [])
    model = Popularity(torch.ones(store.num_items))
    for k, message in ((0, "--k must be >= 1"), (store.num_items + 1, "exceeds the catalogue")):
        with pytest.raises(GenpasError, match=message):
            recommend(model, store, np.arange(2), max_len=5, k=k)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_format_holds_the_same_lists_in_the_datas_ids(tmp_path, suffix):
    store = _store()
    recs = recommend(Popularity(torch.arange(store.num_items, 0, -1)), store, np.arange(store.num_users), 5, 3)
    recs.items[2, 1:], recs.scores[2, 1:] = -1, -np.inf  # a user with one item left: its empty slots stay out
    path = tmp_path / f"recs{suffix}"
    written = write_recommendations(path, recs, store)
    expected = [(store.user_ids[u], rank, store.item_ids[i], s)
                for u, items, scores in zip(recs.users, recs.items, recs.scores)
                for rank, (i, s) in enumerate(zip(items, scores), 1) if i >= 0]
    assert written == len(expected) and not list(tmp_path.glob(".*tmp*"))
    if suffix == ".jsonl":
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        got = [(o["user_id"], r, i, s) for o in lines for r, (i, s) in enumerate(zip(o["items"], o["scores"]), 1)]
    else:
        frame = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
        assert frame.columns == ["user_id", "rank", "item_id", "score"]
        got = list(frame.iter_rows())
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    np.testing.assert_allclose([g[3] for g in got], [e[3] for e in expected], rtol=1e-6)


# ---- CLI ------------------------------------------------------------------------------------------------------

@pytest.fixture
def trained(tmp_path, cli):
    write_table(synthesize(SynthConfig(users=30, items=20, mean_length=8, seed=3)), tmp_path / "log.csv")
    code, _ = cli(["train", "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "run"), "--epochs", "2",
                   "--dim", "16", "--layers", "1", "--heads", "2", "--no-progress"])
    assert code == 0
    return tmp_path


def test_recommend_cli_writes_every_users_list_and_refuses_bad_input(trained, cli):
    run, log = trained / "run", pl.read_csv(trained / "log.csv")
    code, out = cli(["recommend", "--run", str(run), "--out", str(trained / "recs.csv"), "--k", "4"])
    summary = json.loads(out.out)
    frame = pl.read_csv(trained / "recs.csv", schema_overrides={"user_id": pl.String, "item_id": pl.String})
    assert code == 0 and summary["users"] == log["user_id"].n_unique() == frame["user_id"].n_unique()
    assert summary["recommendations"] == frame.height == 4 * summary["users"]  # nobody runs out of items
    seen = set(zip(log["user_id"].cast(pl.String), log["item_id"].cast(pl.String)))
    assert not any((u, i) in seen for u, i in zip(frame["user_id"], frame["item_id"]))  # history excluded
    # The same run, asked for two users, lists what the full run listed for them.
    pick = frame["user_id"].unique(maintain_order=True).to_list()[:2]
    code, _ = cli(["recommend", "--run", str(run), "--out", str(trained / "two.jsonl"), "--k", "4",
                   "--users", ",".join(pick)])
    lines = [json.loads(line) for line in (trained / "two.jsonl").read_text().splitlines()]
    assert code == 0 and [o["user_id"] for o in lines] == pick
    for o in lines:
        assert o["items"] == frame.filter(pl.col("user_id") == o["user_id"])["item_id"].to_list()

    (trained / "ids.txt").write_text("nobody\n")
    bad = [
        (["--out", str(trained / "recs.csv")], "already exists; pass --overwrite"),
        (["--out", str(trained / "r.txt")], "unknown format '.txt'"),
        (["--out", str(trained / "r.csv"), "--users", "nobody"], "not users of the run's data"),
        (["--out", str(trained / "r.csv"), "--users-file", str(trained / "ids.txt")], "not users of the run's data"),
        (["--out", str(trained / "r.csv"), "--users-file", str(trained / "none.txt")], "no such file"),
        (["--out", str(trained / "r.csv"), "--users", "a", "--users-file", str(trained / "ids.txt")], "not both"),
        (["--out", str(trained / "r.csv"), "--k", "0"], "--k must be >= 1"),
        (["--out", str(trained / "r.csv"), "--batch-size", "0"], "--batch-size must be >= 1"),
        (["--out", str(run / "config.yaml"), "--overwrite"], "unknown format"),
        (["--out", str(run / "best.safetensors") + ".csv", "--k", "99"], "exceeds the catalogue"),
    ]
    for extra, message in bad:
        code, out = cli(["recommend", "--run", str(run), *extra])
        assert code == 2 and message in out.err and "Traceback" not in out.err, (extra, out.err)
    assert not (trained / "r.csv").exists() and not (run / "best.safetensors.csv").exists()
    code, out = cli(["recommend", "--run", str(trained), "--out", str(trained / "r.csv")])
    assert code == 2 and "no config.yaml" in out.err
    (trained / "bom.txt").write_text("\ufeff" + pick[0] + "\n", encoding="utf-8")  # a spreadsheet's byte-order mark
    code, out = cli(["recommend", "--run", str(run), "--out", str(trained / "bom.csv"), "--users-file",
                     str(trained / "bom.txt"), "--keep-history", "--k", str(log["item_id"].n_unique())])
    assert code == 0, out.err
    kept = pl.read_csv(trained / "bom.csv", schema_overrides={"user_id": pl.String, "item_id": pl.String})
    history = {i for u, i in seen if u == pick[0]}
    assert kept.height == log["item_id"].n_unique() and history <= set(kept["item_id"])  # every item, history too
    more_bad = [
        (["--out", str(trained / "log.csv"), "--overwrite"], "is an input of this command"),  # the run's data
        (["--out", str(trained / "ids.txt"), "--users-file", str(trained / "ids.txt")], "unknown format"),
        (["--out", str(trained / "bom.csv"), "--overwrite", "--users-file", str(trained / "bom.csv")],
         "is an input of this command"),
        (["--out", str(run / "log.csv"), "--overwrite"], "one of the run's own files"),
        (["--out", str(trained / "r.csv"), "--users", "a,,b"], "empty id at position 2"),
        (["--out", str(trained / "r.csv"), "--device", "foo"], "--device must be auto, cpu, cuda, cuda:N or mps"),
        (["--out", str(trained / "r.csv"), "--device", "cuda:01"], "--device must be auto, cpu, cuda, cuda:N or mps"),
        (["--out", str(trained / "r.csv"), "--at", "5"], "reads no event times"),
        (["--out", str(trained / "r.csv"), "--beam", "30"], "only TIGER decodes with a beam"),
        (["--out", str(trained / "new" / "sub" / "r.csv"), "--users", "nobody"], "not users of the run's data"),
        (["--out", str(trained / "r.csv"), "--users-file", str(trained / "ids.txt")], "--users-file"),
    ]
    for extra, message in more_bad:
        code, out = cli(["recommend", "--run", str(run), *extra])
        assert code == 2 and message in out.err and "Traceback" not in out.err, (extra, out.err)
    assert log.equals(pl.read_csv(trained / "log.csv")) and not (trained / "new").exists()  # nothing changed
    # Weights trained on other data (here: the same events in another order, so other item codes) are refused.
    log.reverse().write_csv(trained / "log.csv")
    code, out = cli(["recommend", "--run", str(run), "--out", str(trained / "r.csv")])
    assert code == 2 and "the run's data has changed since it was trained" in out.err
    code, out = cli(["evaluate", "--run", str(run)])
    assert code == 2 and "the run's data has changed since it was trained" in out.err
    (trained / "log.csv").unlink()
    code, out = cli(["recommend", "--run", str(run), "--out", str(trained / "r.csv")])
    assert code == 2 and "the run's data" in out.err and "cannot be loaded" in out.err
    log.write_csv(trained / "log.csv")
    (run / "best.safetensors").write_bytes(b"damaged")
    code, out = cli(["recommend", "--run", str(run), "--out", str(trained / "r.csv")])
    assert code == 2 and "unreadable checkpoint" in out.err and not (trained / "r.csv").exists()


def test_recommend_cli_with_tiger_keeps_k_within_the_beam(tmp_path, cli, monkeypatch):
    write_table(synthesize(SynthConfig(users=30, items=25, mean_length=8, seed=4)), tmp_path / "log.csv")
    code, _ = cli(["train", "--model", "tiger", "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "run"),
                   "--epochs", "1", "--levels", "2", "--codebook-size", "4", "--beam", "12", "--dim", "16",
                   "--heads", "2", "--layers", "1", "--no-progress", "--item-embeddings", "cooccurrence"])
    assert code == 0
    code, out = cli(["recommend", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "r.csv"), "--k", "13"])
    assert code == 2 and "beam of this TIGER run (12)" in out.err and "give --beam 13 or more" in out.err
    code, out = cli(["recommend", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "wide.csv"), "--k", "13",
                     "--beam", "16"])  # a wider beam at serving time ranks more items
    assert code == 0 and pl.read_csv(tmp_path / "wide.csv").group_by("user_id").len()["len"].max() == 13
    code, out = cli(["recommend", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "r.parquet"), "--k", "12"])
    summary, frame = json.loads(out.out), pl.read_parquet(tmp_path / "r.parquet")
    assert code == 0 and 0 < frame.height == summary["recommendations"] <= 12 * summary["users"]
    assert frame["score"].is_finite().all() and frame.group_by("user_id").len()["len"].max() <= 12

    # The beam passes over the history: each list is the beam search with the user's items banned, and holds at
    # least as many items as a beam that spends places on the history and drops them afterwards.
    from genpas.train.build import build_model, load_split
    from genpas.train.checkpoint import load_weights
    from genpas.train.config import TrainConfig
    from genpas.train.recommend import recommend_run

    cfg = TrainConfig.from_run(tmp_path / "run" / "config.yaml")
    split = load_split(cfg)
    model, _ = build_model(cfg, split)
    load_weights(tmp_path / "run" / "best.safetensors", model)
    model.eval()
    recs, store = recommend_run(tmp_path / "run", k=12, batch_size=1)  # the shapes of the direct calls below
    longer = 0
    for row, u in enumerate(recs.users):
        seq = store.sequence(u).astype(np.int64)
        x = torch.from_numpy(seq[-cfg.max_len:] + 1)[None]
        banned = torch.zeros(1, store.num_items, dtype=torch.bool)
        banned[0, torch.from_numpy(seq)] = True
        items, _ = model.beam_search(x, banned=banned)
        items = items[0][items[0] >= 0].numpy()
        assert not set(items) & set(seq.tolist())
        listed = recs.items[row] >= 0
        assert sorted(recs.items[row][listed]) == sorted(items)  # the beam's items (ties in any order there) ...
        assert (np.diff(recs.scores[row][listed]) <= 0).all()  # ... best first
        plain, _ = model.beam_search(x)
        dropped = [i for i in plain[0].tolist() if i >= 0 and i not in set(seq.tolist())]
        assert len(items) >= len(dropped)
        longer += len(items) > len(dropped)
    assert longer > 0  # the banned search is not a no-op on this data
    # Evaluation with the history excluded bans it in the beam too: a target can only rank higher than with it kept.
    from genpas.train.evaluate import evaluate

    kept, excluded = (evaluate(model, split, "test", cfg.max_len, exclude_history=e) for e in (False, True))
    assert all(excluded[m] >= kept[m] for m in ("recall@10", "ndcg@10", "recall@5")) and excluded["recall@10"] > 0

    # Serving reads the semantic ids from the checkpoint: it needs neither the item embeddings nor the id cache.
    import genpas.train.item_codes

    def no_ids(*args, **kwargs):
        raise AssertionError("semantic ids recomputed")

    monkeypatch.setattr(genpas.train.item_codes, "semantic_ids", no_ids)
    served, _ = recommend_run(tmp_path / "run", k=12, batch_size=1)
    np.testing.assert_array_equal(served.items, recs.items)
    from_weights, _ = build_model(cfg, split, tmp_path / "run" / "best.safetensors")
    assert torch.equal(from_weights.item_tokens, model.item_tokens) and torch.equal(from_weights.trie_next, model.trie_next)
    from safetensors.torch import save_file

    from genpas.train.checkpoint import tiger_codes

    with pytest.raises(GenpasError, match="12 items in the checkpoint|items in the checkpoint, 99 in the data"):
        tiger_codes(tmp_path / "run" / "best.safetensors", 99)
    save_file({"x": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(GenpasError, match="unreadable TIGER checkpoint"):
        tiger_codes(tmp_path / "other.safetensors", store.num_items)


@pytest.mark.parametrize("edit,message", [
    (("heads: 2", "heads: 1"), "trained as heads = 2, but the run's config.yaml builds heads = 1 (was it edited?)"),
    (("model: sasrec", "model: hstu"), "trained as model = 'SASRec', but the run's config.yaml builds model = 'HSTU'"),
    (("model: sasrec", "model: pop"), "its config.yaml says model pop, but the run holds trained weights"),
])
def test_a_config_edited_after_training_is_refused_even_where_the_shapes_still_fit(trained, cli, edit, message):
    config = trained / "run" / "config.yaml"
    config.write_text(config.read_text().replace(*edit))
    for command in (["recommend", "--run", str(trained / "run"), "--out", str(trained / "recs.csv")],
                    ["evaluate", "--run", str(trained / "run")]):
        code, out = cli(command)
        assert code == 2 and message in out.err and len(out.err.strip().splitlines()) == 1, out.err
    assert not (trained / "recs.csv").exists()


def test_a_run_trained_on_a_relative_path_is_served_from_anywhere(tmp_path, cli, monkeypatch):
    write_table(synthesize(SynthConfig(users=30, items=20, mean_length=8, seed=3)), tmp_path / "log.csv")
    monkeypatch.chdir(tmp_path)
    assert cli(["train", "--data", "log.csv", "--out", "run", "--epochs", "1", "--dim", "8", "--layers", "1",
                "--heads", "1", "--no-progress"])[0] == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # config.yaml says data: log.csv, which is not here
    code, out = cli(["recommend", "--run", str(tmp_path / "run"), "--out", "recs.csv", "--k", "3"])
    assert code == 0 and (tmp_path / "elsewhere" / "recs.csv").exists(), out.err


def test_an_unfinished_run_on_a_relative_path_resumes_from_anywhere_and_only_on_its_data(tmp_path, cli, monkeypatch):
    """`train --resume` of a run trained from another directory finds its data where the checkpoint recorded it; a
    --data naming a copy of the same data elsewhere resumes too (the data is checked by its fingerprint), other data
    is refused."""
    write_table(synthesize(SynthConfig(users=30, items=20, mean_length=8, seed=3)), tmp_path / "log.csv")
    monkeypatch.chdir(tmp_path)
    tiny = ["--dim", "8", "--layers", "1", "--heads", "1", "--no-progress"]
    assert cli(["train", "--data", "log.csv", "--out", "run", "--epochs", "1", *tiny])[0] == 0
    (tmp_path / "run" / "metrics.json").unlink()  # as if killed after its first epoch
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # config.yaml says data: log.csv, which is not here
    code, out = cli(["train", "--resume", "--out", str(tmp_path / "run"), "--epochs", "2"])
    assert code == 0, out.err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["data_path"] == str(tmp_path / "log.csv")

    (tmp_path / "moved").mkdir()
    (tmp_path / "log.csv").rename(tmp_path / "moved" / "log.csv")
    (tmp_path / "run" / "metrics.json").unlink()
    code, out = cli(["train", "--resume", "--out", str(tmp_path / "run"), "--epochs", "3",
                     "--data", str(tmp_path / "moved" / "log.csv")])
    assert code == 0 and json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs_run"] == 3, out.err
    from genpas.train.checkpoint import load_state
    from genpas.train.config import TrainConfig
    from genpas.train.run_dir import locate_data

    assert load_state(tmp_path / "run" / "last.pt")["trainer"]["data_path"] == str(tmp_path / "moved" / "log.csv")
    assert locate_data(tmp_path / "run", TrainConfig(data="ml-1m")).data == "ml-1m"  # a built-in name stays a name

    write_table(synthesize(SynthConfig(users=30, items=20, mean_length=8, seed=4)), tmp_path / "other.csv")
    (tmp_path / "run" / "metrics.json").unlink()
    code, out = cli(["train", "--resume", "--out", str(tmp_path / "run"), "--epochs", "4",
                     "--data", str(tmp_path / "other.csv")])
    assert code == 2 and "the data has changed since" in out.err and "Traceback" not in out.err
