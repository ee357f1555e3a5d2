"""The search's pruning (genpas.search.pruning): the reach formula, the verdict, and pruned runs in the run store and
the search: unfinished, resumable, read back by searches that prune alike and resumed by everything else."""

from __future__ import annotations

import csv
import json
import math

import pytest

from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.search.pruning import Prune, reach


def test_reach_carries_the_trend_on_steeper_and_adds_the_margin():
    # a straight line: no noise; slope 0.1, level 0.6 at epoch 5, 4 epochs left, trend carried on twice as steep
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert reach(scores, epochs=10, window=4, factor=2, margin=0.05) == pytest.approx(1.05 * (0.6 + 2 * 0.1 * 4))
    assert reach(scores, epochs=10, window=4, factor=0, margin=0) == pytest.approx(0.6)


def test_reach_adds_the_noise_of_the_best_validations_left():
    # the last window is flat around 0.55 with residuals of +-0.05: sd (2 degrees of freedom used) sqrt(0.01 / 2)
    scores = [0.1, 0.2, 0.5, 0.6, 0.6, 0.5]
    noise = math.sqrt(4 * 0.05 ** 2 / 2)
    expected = 1.05 * (0.6 + math.sqrt(2 * math.log(4 + 1)) * noise)  # the best so far (0.6) is above the level
    assert reach(scores, epochs=10, window=4) == pytest.approx(expected)


@pytest.mark.parametrize("scores, epochs, window", [
    ([0.1, 0.2, 0.3], 10, 4),                  # no full window yet
    ([0.1, 0.2, 0.3, 0.4, 0.5], 5, 3),        # the last epoch: the cap ends the run now
    ([0.1, 0.5, 0.4, 0.3, 0.45, 0.2], 10, 4),  # no gain over the last 4 epochs: patience ends it now
    ([0.1, 0.2, 0.3, 0.4, 0.5], 10, 2),        # a window under 3 epochs has no noise estimate
])
def test_reach_does_not_apply(scores, epochs, window):
    assert reach(scores, epochs, window) is None


def test_the_verdict_stops_a_run_only_below_a_finished_leader():
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    most = reach(scores, 10, 4)
    assert Prune(lambda: None).verdict(scores, 10, 4) is None  # nothing finished yet
    assert Prune(lambda: ("lead", most)).verdict(scores, 10, 4) is None  # reach it: goes on
    verdict = Prune(lambda: ("lead", most + 0.01)).verdict(scores, 10, 4)
    assert verdict["epoch"] == 5 and verdict["reach"] == pytest.approx(most) and verdict["leader"] == "lead"
    assert (verdict["factor"], verdict["margin"], verdict["leader_valid_ndcg@10"]) == (2.0, 0.05, most + 0.01)
    record, leader = {"epochs_run": 6, "pruned": verdict}, (lambda: ("lead", most + 0.01))
    assert Prune(leader).accepts(record, 6)
    assert not Prune(leader).accepts(record, 7)  # trained further since
    assert not Prune(leader, factor=3.0).accepts(record, 6)  # another rule
    assert not Prune(leader, margin=0.1).accepts(record, 6)
    assert not Prune(lambda: ("lower", most)).accepts(record, 6)  # this search's leader is within its reach
    assert not Prune(lambda: None).accepts(record, 6)
    with pytest.raises(Exception, match="--prune-factor must be >= 0"):
        Prune(lambda: None, factor=float("nan"))


def _setup(tmp_path):
    from genpas.train.config import TrainConfig

    write_table(synthesize(SynthConfig(users=80, items=30, mean_length=10, seed=5)), tmp_path / "log.csv")
    return TrainConfig(data=str(tmp_path / "log.csv"), dim=16, layers=1, heads=1, max_len=8, batch_size=16,
                       epochs=8, patience=3, lr=0.01, progress=False)


def _log_scores(run_dir):
    with open(run_dir / "log.csv", newline="") as fh:
        return [(int(r["epoch"]), float(r["valid_ndcg@10"])) for r in csv.DictReader(fh)]


def test_a_pruned_run_is_left_unfinished_read_back_alike_and_resumed_otherwise(tmp_path, monkeypatch):
    from genpas.search import run_store
    from genpas.search.run_store import RunStore, run_key

    base = _setup(tmp_path)
    key = f"mt-{run_key(base)}"
    store, hopeless = RunStore(tmp_path / "d"), Prune(lambda: ("a leader", 1.0))  # nothing reaches 1.0
    record = store.get(base, "mt", prune=hopeless)
    run = tmp_path / "d" / "runs" / key
    logged = _log_scores(run)
    assert record["stopped_by"] == "pruned" and record["pruned"]["epoch"] == len(logged) - 1 >= base.patience
    assert (run / "last.pt").exists() and not (run / "metrics.json").exists()  # unfinished, resumable
    assert key not in store.ledger.done and json.loads((tmp_path / "d" / "pruned.jsonl").read_text())["name"] == key
    # the record holds the best epoch's weights evaluated afresh: the validation score the log has for that epoch
    best = max(score for _, score in logged)
    assert record["valid"]["ndcg@10"] == pytest.approx(best, abs=1e-6)
    assert record["best_epoch"] == [score for _, score in logged].index(best)
    assert record["epochs_run"] == len(logged) and record["optimizer_steps"] > 0 and "ndcg@10" in record["test"]

    # A search pruning alike reads the record back without training; a fresh store sees it too.
    monkeypatch.setattr(run_store, "train_owned", lambda *a, **k: pytest.fail("trained a pruned run again"))
    assert RunStore(tmp_path / "d").get(base, "mt", prune=Prune(lambda: ("a leader", 1.0)))["pruned"] == record["pruned"]
    monkeypatch.undo()

    # Without the rule (an experiment, a search without --prune) the run resumes where it stopped and finishes.
    finished = RunStore(tmp_path / "d").get(base, "mt")
    resumed = _log_scores(run)
    assert resumed[: len(logged)] == logged and [e for e, _ in resumed] == list(range(len(resumed)))
    assert finished["stopped_by"] in ("patience", "epochs") and (run / "metrics.json").exists()
    assert RunStore(tmp_path / "d").get(base, "mt", prune=hopeless)["stopped_by"] == finished["stopped_by"]


def test_a_search_that_prunes_records_it_and_plans_it(tmp_path, monkeypatch, capsys):
    from genpas.cli import main
    from genpas.search import trained

    base = _setup(tmp_path)
    monkeypatch.setattr(trained, "_leader", lambda store, jobs: ("a leader", 1.0))  # every training is hopeless
    result = trained.search(base, tmp_path / "s", top_k=1, samples=2, prune_factor=2.0)
    pruned = result["prune"]["pruned"]
    assert result["prune"]["factor"] == 2.0 and result["prune"]["margin"] == 0.05 and pruned
    assert result["prune"]["epochs_left_at_most"] == sum(base.epochs - entries["epochs_run"]
                                                         for entries in [*result["baselines"].values(),
                                                                         *result["trained"]] if "pruned" in entries)
    entries = {**result["baselines"], **{trained._name(t["alpha"], t["beta"], t["gamma"]): t for t in result["trained"]}}
    for name in pruned:
        assert entries[name]["stopped_by"] == "pruned" and entries[name]["pruned"]["reach"] < 1.0
    assert "pruned after epoch" in trained.format_search(result)
    # the baselines are what GenPAS is held against: they train to convergence unless --prune-baselines
    assert not set(pruned) & set(trained.BASELINES) and result["prune"]["baselines"] is False
    assert all(b["stopped_by"] != "pruned" for b in result["baselines"].values())
    both = trained.search(base, tmp_path / "b", top_k=1, samples=2, prune_factor=2.0, prune_baselines=True)
    assert set(trained.BASELINES) & set(both["prune"]["pruned"]) and both["prune"]["baselines"] is True

    (tmp_path / "c.yaml").write_text("".join(f"{k}: {getattr(base, k)}\n" for k in (
        "data", "dim", "layers", "heads", "max_len", "batch_size", "epochs", "patience", "lr")))
    flags = ["search", "--config", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "s"), "--top-k", "1",
             "--samples", "2", "--no-progress"]
    def plan(extra=()):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([*flags, "--plan", *extra])
        assert exc.value.code == 0
        return capsys.readouterr().out

    listed = plan(["--prune"])
    assert listed.count("pruned  ") == len(pruned) and f"{len(pruned)} pruned" in listed
    flags[flags.index("--out") + 1] = str(tmp_path / "b")  # the search that pruned its baselines too
    assert plan(["--prune"]).count("pruned  ") < plan(["--prune", "--prune-baselines"]).count("pruned  ")
    assert "pruned" not in plan()  # without --prune those runs are merely started (resumable)


@pytest.mark.parametrize("flags, message", [
    (["--prune-factor", "3"], "--prune-factor applies with --prune only; add --prune"),
    (["--prune-margin", "0.1"], "--prune-margin applies with --prune only; add --prune"),
    (["--prune-baselines"], "--prune-baselines applies with --prune only; add --prune"),
    (["--seed", str(2**64)], f"--seed must be an integer from 0 to 2**64 - 1, got {2**64}"),
    (["--prune", "--prune-margin", "-1"], "--prune-margin must be >= 0, got -1.0"),
    (["--prune", "--prune-factor", "nan"], "--prune-factor must be >= 0, got nan"),
])
def test_prune_flags_out_of_range_are_one_line(tmp_path, capsys, flags, message):
    from genpas.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["search", "--data", "nowhere.csv", "--out", str(tmp_path / "s"), "--plan", *flags])
    assert exc.value.code == 2 and capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]


def test_a_pruned_record_stands_only_for_its_rule_its_epoch_and_a_leader_above_its_reach(tmp_path):
    from genpas.search.run_store import RunStore, run_key

    base = _setup(tmp_path)
    run = tmp_path / "d" / "runs" / f"mt-{run_key(base)}"
    first = RunStore(tmp_path / "d").get(base, "mt", prune=Prune(lambda: ("a leader", 1.0)))
    epochs = first["epochs_run"]
    # a search of the same directory whose leader is below the record's reach does not take it: the run resumes
    low = Prune(lambda: ("a low leader", first["pruned"]["reach"] - 1e-9))
    assert not low.accepts(first, epochs)
    # another rule resumes the run too, and its own record replaces the first (one more epoch, the other factor)
    other = RunStore(tmp_path / "d").get(base, "mt", prune=Prune(lambda: ("a leader", 1.0), factor=3.0))
    assert other["pruned"]["factor"] == 3.0 and other["epochs_run"] == len(_log_scores(run)) > epochs
    # the first rule's record is stale now (the run was trained past it): that rule trains on and records anew
    again = RunStore(tmp_path / "d").get(base, "mt", prune=Prune(lambda: ("a leader", 1.0)))
    assert again["pruned"]["factor"] == 2.0 and again["epochs_run"] == len(_log_scores(run)) > other["epochs_run"]


def test_the_last_epoch_ends_a_run_finished_not_pruned(tmp_path):
    from dataclasses import replace

    from genpas.search.run_store import RunStore

    base = replace(_setup(tmp_path), epochs=4)  # the rule applies from epoch 3 on, which is the last one
    record = RunStore(tmp_path / "d").get(base, "mt", prune=Prune(lambda: ("a leader", 1.0)))
    assert record["stopped_by"] in ("epochs", "patience") and "pruned" not in record


def test_the_leader_is_the_best_finished_training_of_the_search(tmp_path):
    from dataclasses import replace

    from genpas.search import trained
    from genpas.search.run_store import RunStore

    base = _setup(tmp_path)
    store = RunStore(tmp_path / "d")
    jobs = [("lt", replace(base, strategy="lt")), ("mt", replace(base, strategy="mt"))]
    assert trained._leader(store, jobs) is None  # nothing finished
    store.get(jobs[1][1], "mt", prune=Prune(lambda: ("a leader", 1.0)))  # pruned: not a leader
    assert trained._leader(store, jobs) is None
    lt = store.get(jobs[0][1], "lt")
    assert trained._leader(store, jobs) == ("lt", lt["valid"]["ndcg@10"])
    mt = store.get(jobs[1][1], "mt")  # resumed and finished: now it counts
    assert trained._leader(store, jobs) == max([("lt", lt["valid"]["ndcg@10"]), ("mt", mt["valid"]["ndcg@10"])],
                                               key=lambda pair: pair[1])
    assert trained._leader(store, jobs[:1]) == ("lt", lt["valid"]["ndcg@10"])  # only the search's own jobs


def test_a_search_pruning_against_its_real_leader_picks_a_finished_training(tmp_path):
    from genpas.search import trained

    base = _setup(tmp_path)
    result = trained.search(base, tmp_path / "s", top_k=2, samples=2, prune_factor=0.0, prune_margin=0.0)
    entries = [*result["baselines"].values(), *result["trained"]]
    assert result["prune"]["pruned"]  # on this data, with F = M = 0, the rule stops some trainings
    assert result["best"]["valid"]["ndcg@10"] == max(e["valid"]["ndcg@10"] for e in entries)
    best = next(e for e in entries if e["valid"] == result["best"]["valid"])
    assert "pruned" not in best  # the leader is never pruned, so neither is the pick
    for entry in entries:
        if "pruned" in entry:
            assert entry["pruned"]["leader_valid_ndcg@10"] <= result["best"]["valid"]["ndcg@10"]
            assert entry["valid"]["ndcg@10"] < entry["pruned"]["leader_valid_ndcg@10"]
    assert result["screening_predicts_training"]["settings"] == sum("pruned" not in t for t in result["trained"])


def test_a_damaged_pruned_file_stops_only_searches_that_prune(tmp_path):
    from genpas.errors import GenpasError
    from genpas.search.run_store import RunStore

    base = _setup(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "pruned.jsonl").write_text('{"not": "a record"}\n')
    assert RunStore(tmp_path / "d").get(base, "lt")["stopped_by"] in ("epochs", "patience")
    with pytest.raises(GenpasError, match=r"pruned.jsonl: line 1: .*remove the line, or the file \(its pruned runs"):
        RunStore(tmp_path / "d").get(base, "mt", prune=Prune(lambda: ("a leader", 1.0)))


def test_a_pruned_tiger_run_is_evaluated_with_the_semantic_ids_of_its_weights(tmp_path):
    from dataclasses import replace

    from genpas.search.run_store import RunStore

    base = replace(_setup(tmp_path), model="tiger", mode="pairs", levels=2, codebook_size=4, beam=10,
                   item_embeddings="cooccurrence", heads=2, lr=0.003, patience=4, epochs=10)
    record = RunStore(tmp_path / "d").get(base, "mt", prune=Prune(lambda: ("a leader", 1.0)))
    assert record["stopped_by"] == "pruned" and record["config"]["model"] == "tiger"
    best = max(score for _, score in record["curve"])
    assert record["valid"]["ndcg@10"] == pytest.approx(best, abs=1e-6)  # the beam search ranks as in training


def test_a_reach_a_hair_below_the_leader_is_printed_apart_from_it():
    from genpas.search.pruning import apart

    assert apart(0.18616129869299963, 0.18616726889878168) == ("0.18616", "0.18617")  # ML-1M's GenPAS(0, 2, 1)
    assert apart(0.1834, 0.1862) == ("0.1834", "0.1862")
    assert apart(0.5, 0.5) == ("0.50000000", "0.50000000")  # equal: the digits stop at 8
