"""Continuing a capped run (genpas.search.continuation): a run asked for with a higher epoch cap starts from the
finished run that the lower cap ended, and ends exactly where a training from scratch to the higher cap ends."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import replace

from test_pruning import _setup as tiny_run


def _setup(tmp_path):
    """The pruning tests' small data and model, with patience above the cap: only the cap ends these runs."""
    return replace(tiny_run(tmp_path), epochs=3, patience=20)


def _rows(run_dir):
    """Each epoch's (epoch, loss, valid NDCG@10, optimizer steps) from a run's log.csv."""
    with open(run_dir / "log.csv", newline="") as fh:
        return [(r["epoch"], r["loss"], r["valid_ndcg@10"], r["optimizer_steps"]) for r in csv.DictReader(fh)]


def _digests(run_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run_dir.iterdir()) if p.is_file()}


def test_a_higher_cap_continues_the_capped_run_and_matches_training_from_scratch(tmp_path):
    from genpas.search import campaign
    from genpas.search.run_store import RunStore, run_name

    short = _setup(tmp_path)
    store = RunStore(tmp_path / "d")
    first = store.get(short, "mt")
    assert first["stopped_by"] == "epochs" and first["epochs_run"] == 3 and "continued_from" not in first
    old_dir = tmp_path / "d" / "runs" / run_name(short, "mt")
    before = _digests(old_dir)

    long = replace(short, epochs=6)
    planned = campaign.plan(lambda store: store.get(long, "mt"), RunStore(tmp_path / "d"))  # trains nothing
    assert [(r["state"], r["continues"], r["continues_after"]) for r in planned] == [("pending", first["name"], 3)]
    continued = RunStore(tmp_path / "d").get(long, "mt")
    scratch = RunStore(tmp_path / "fresh").get(long, "mt")
    new_dir = tmp_path / "d" / "runs" / run_name(long, "mt")
    assert continued["continued_from"] == first["name"] and "continued_from" not in scratch
    assert _rows(new_dir) == _rows(tmp_path / "fresh" / "runs" / run_name(long, "mt"))  # epoch for epoch
    assert len(_rows(new_dir)) == 6 and _rows(new_dir)[:3] == _rows(old_dir)
    for split in ("valid", "test"):
        assert continued[split] == scratch[split]
    assert (continued["best_epoch"], continued["epochs_run"], continued["optimizer_steps"]) == \
        (scratch["best_epoch"], scratch["epochs_run"], scratch["optimizer_steps"])
    # the experiments' JSON names the run, its cap and where it started
    from genpas.search.experiments import per_seed

    assert {k: per_seed(continued)[k] for k in ("run", "epochs_run", "epoch_cap", "continued_from")} == {
        "run": continued["name"], "epochs_run": 6, "epoch_cap": 6, "continued_from": first["name"]}
    assert "continued_from" not in per_seed(scratch) and per_seed(first)["epoch_cap"] == 3
    # the capped run is left as it was, and the store keeps both
    assert _digests(old_dir) == before
    assert set(RunStore(tmp_path / "d").ledger.done) == {first["name"], continued["name"]}


def test_a_run_is_continued_or_reused_only_where_the_longer_run_is_the_same(tmp_path, monkeypatch):
    import pytest

    from genpas.search import campaign, run_store
    from genpas.search.run_store import RunStore, run_name

    short = _setup(tmp_path)
    store = RunStore(tmp_path / "d")
    # cosine: the decay is set by the cap, so the first epochs of a longer run are other epochs
    store.get(replace(short, cosine=True), "mt")
    assert "continued_from" not in store.get(replace(short, cosine=True, epochs=5), "mt")
    # patience ended it: the higher cap never comes into play, so the run stands for the longer one, untrained
    patient = replace(short, patience=1, epochs=40)
    ended = store.get(patient, "mt")
    assert ended["stopped_by"] == "patience" and ended["epochs_run"] < 40
    monkeypatch.setattr(run_store, "train_owned", lambda *a, **k: pytest.fail("trained a run patience had ended"))
    assert store.get(replace(patient, epochs=60), "mt") == ended
    assert RunStore(tmp_path / "d").finished(replace(patient, epochs=60), "any") == ended
    planned = campaign.plan(lambda s: s.get(replace(patient, epochs=60), "mt"), RunStore(tmp_path / "d"))
    assert [(r["state"], r["same_as"], r["epochs"]) for r in planned] == [("finished", ended["name"],
                                                                             ended["epochs_run"])]
    assert store.uncapped(replace(patient, epochs=60, cosine=True)) is None  # the cosine decay is set by the cap
    monkeypatch.undo()
    # a time budget: where the longer run stops would depend on the seconds the first part measured
    budget = replace(short, time_budget_minutes=60.0)
    assert store.get(budget, "mt")["stopped_by"] == "epochs"
    assert store.capped(replace(budget, epochs=5)) is None
    # another seed, or a capped run whose files are gone
    store.get(short, "mt")
    assert store.capped(replace(short, epochs=4))["name"] == run_name(short, "mt")
    assert "continued_from" not in store.get(replace(short, seed=1, epochs=4), "mt")
    (tmp_path / "d" / "runs" / run_name(short, "mt") / "best.safetensors").unlink()
    assert store.capped(replace(short, epochs=4)) is None
    assert "continued_from" not in store.get(replace(short, epochs=4), "mt")


def test_a_damaged_or_foreign_checkpoint_is_not_continued(tmp_path, caplog):
    from genpas.search.continuation import start_from
    from genpas.search.run_store import RunStore, run_name

    short = _setup(tmp_path)
    store = RunStore(tmp_path / "d")
    record = store.get(short, "mt")
    runs = tmp_path / "d" / "runs"
    target = runs / "new"
    target.mkdir()
    (target / "config.yaml").write_text("seed: 0\n")  # a copy cut short by a kill: no last.pt yet
    assert not start_from({**record, "epochs_run": 2}, target, runs)  # its last.pt holds another epoch
    (runs / run_name(short, "mt") / "last.pt").write_bytes(b"cut short")
    assert not start_from(record, target, runs)
    assert not (target / "last.pt").exists() and "unreadable training state" in caplog.text
    assert not any(target.iterdir())  # nothing copied, and what a copy cut short had left is gone
    (runs / run_name(short, "mt") / "last.pt").unlink()
    assert not start_from(record, target, runs) and "No such file" in caplog.text


def test_a_search_planned_under_a_higher_cap_shows_what_it_reuses_and_continues(tmp_path):
    from genpas.search import trained

    base = replace(_setup(tmp_path), epochs=30, patience=2)  # patience ends every training well before 30
    trained.search(base, tmp_path / "s", top_k=1, samples=2)
    rows = trained.plan(replace(base, epochs=40), tmp_path / "s", top_k=1, samples=2)
    assert len(rows) == len(trained.BASELINES) + 1  # the baselines and the one setting trained
    assert all(r["state"] == "finished" and r["key"] != r["same_as"] for r in rows), rows
    assert all(r["epochs"] == len(_rows(tmp_path / "s" / "runs" / r["same_as"])) for r in rows)  # its log's epochs


def test_every_section_of_a_model_names_the_runs_its_cap_ended(monkeypatch):
    from genpas.search import experiment_report

    def metric(v):
        return {"mean": v, "std": 0.0, "values": [v]}

    row = {"label": "MT", "valid": {"ndcg@10": metric(0.1)}, "test": {k: metric(0.1) for k in experiment_report.KEYS},
           "best_epoch": [19], "stopped_by": ["epochs"], "train_seconds": metric(60.0), "curves": [[[1, 0.1]] * 20]}
    monkeypatch.setattr(experiment_report, "_compute_table", lambda result: [])
    lines = experiment_report._strategies_table({"seeds": [0], "config": {"epochs": 20, "patience": 5},
                                                 "strategies": {"mt": row}})
    assert lines[-1] == ("- Not converged: the epoch cap, not validation patience (5 epochs without gain), ended MT "
                         "seed 0 after 20 epochs, its best at epoch 19 (from 0). Its figures are a bounded run's, not "
                         "converged ones: trained on, the best validation score could only rise, and the test figures "
                         "could move either way.")
