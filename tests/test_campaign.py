"""Campaigns: an experiment's plan, and several processes sharing one experiment directory (search/campaign.py)."""

from __future__ import annotations

import json

import pytest

from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.search import campaign
from genpas.search.experiments import ExperimentSettings, RunStore, run_strategies
from genpas.train.config import TrainConfig
from genpas.train.run_dir import run_lock

TINY = dict(dim=8, layers=1, heads=1, max_len=6, batch_size=32, warmup_steps=2, epochs=2, patience=1,
            progress=False)


@pytest.fixture
def settings(tmp_path):
    write_table(synthesize(SynthConfig(users=50, items=20, mean_length=8, seed=5)), tmp_path / "log.csv")
    return ExperimentSettings(TrainConfig(data=str(tmp_path / "log.csv"), **TINY), seeds=(0, 1))


def job(settings):
    return lambda store: run_strategies(settings, store, ("mt", "genpas"))


def test_the_plan_lists_every_run_with_its_state_and_trains_nothing(settings, tmp_path):
    store = RunStore(tmp_path / "exp")
    runs = campaign.plan(job(settings), store)
    assert [(r["name"], r["seed"]) for r in runs] == [("mt", 0), ("mt", 1), ("genpas", 0), ("genpas", 1)]
    assert {r["state"] for r in runs} == {"pending"} and not (tmp_path / "exp" / "ledger.jsonl").exists()
    run_strategies(settings, RunStore(tmp_path / "exp"), ("mt",))
    states = {(r["name"], r["seed"]): r["state"] for r in campaign.plan(job(settings), RunStore(tmp_path / "exp"))}
    assert states == {("mt", 0): "finished", ("mt", 1): "finished", ("genpas", 0): "pending",
                      ("genpas", 1): "pending"}
    busy = RunStore(tmp_path / "exp")
    key = campaign.plan(job(settings), busy)[2]["key"]
    with busy.claim(key):  # flock locks of two open files conflict even within one process: "another process"
        assert campaign.plan(job(settings), RunStore(tmp_path / "exp"))[2]["state"] == "running"


def test_sharing_processes_never_train_a_claimed_run_and_give_the_plain_result(settings, tmp_path):
    plain = run_strategies(settings, RunStore(tmp_path / "plain"), ("mt", "genpas"))
    store = RunStore(tmp_path / "shared")
    held = campaign.plan(job(settings), store)[1]["key"]
    with store.claim(held):  # another worker trains this run
        result, left = campaign.share(job(settings), RunStore(tmp_path / "shared"))
    assert result is None and left == [held]
    assert not (tmp_path / "shared" / "runs" / held).exists()  # left to its owner
    assert len(RunStore(tmp_path / "shared").ledger.done) == 3
    result, left = campaign.share(job(settings), RunStore(tmp_path / "shared"))  # the owner's turn: all finished
    assert left == []
    for name, row in plain["strategies"].items():  # who trained a run never changes its numbers
        assert result["strategies"][name]["valid"] == row["valid"] and result["strategies"][name]["test"] == row["test"]


def test_a_run_trained_outside_the_claims_is_never_disturbed(settings, tmp_path):
    store = RunStore(tmp_path / "exp")
    key = campaign.plan(job(settings), store)[0]["key"]
    run = tmp_path / "exp" / "runs" / key
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("a run of an older genpas, still training\n")
    with run_lock(run):
        result, left = campaign.share(job(settings), RunStore(tmp_path / "exp"))
        assert result is None and left == [key]
        assert (run / "config.yaml").exists()  # not dropped as a stale directory while its trainer holds it


def test_cli_plan_and_share(settings, tmp_path, capsys):
    from genpas.cli import main

    def cli(*extra):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main(["experiment", "strategies", "--data", settings.base.data, "--out", str(tmp_path / "exp"),
                  "--strategies", "mt", "--seeds", "0", "--epochs", "1", "--no-progress", *extra])
        return exc.value.code, capsys.readouterr()

    code, out = cli("--plan")
    assert code == 0 and "1 runs: 0 finished, 0 running, 0 started, 1 pending" in out.out
    assert not (tmp_path / "exp" / "strategies.json").exists()
    code, out = cli("--share")
    assert code == 0 and json.loads((tmp_path / "exp" / "strategies.json").read_text())["seeds"] == [0]
    code, out = cli("--plan")
    assert "1 finished" in out.out
    code, out = cli("--plan", "--share")
    assert code == 2 and "--plan and --share" in out.err
