"""The trainer end to end on small synthetic data: outputs, resume exactness, configs, CLI, evaluate."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from genpas.data.split import leave_one_out
from genpas.data.synth import SynthConfig, synthesize_store
from genpas.errors import GenpasError
from genpas.train.config import TrainConfig
from genpas.train.trainer import Trainer, train

TINY = dict(dim=16, layers=1, heads=1, max_len=8, batch_size=32, epochs=3, patience=5, progress=False,
            warmup_steps=5, eval_batch_size=64)


@pytest.fixture(scope="module")
def split():
    store = synthesize_store(SynthConfig(users=150, items=80, mean_length=12, zipf=0.3, p_transition=0.9, p_repeat=0.0, seed=0))
    return leave_one_out(store)


def test_train_writes_the_run_directory(tmp_path, split):
    metrics = train(TrainConfig(strategy="mt", **TINY), tmp_path / "run", split=split)
    for name in ("config.yaml", "metrics.json", "best.safetensors", "last.pt", "log.csv"):
        assert (tmp_path / "run" / name).exists(), name
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for part in ("valid", "test"):
        assert set(saved[part]) >= {"recall@5", "ndcg@5", "recall@10", "ndcg@10"}
    assert {"best_epoch", "train_seconds", "config"} <= set(saved)
    assert saved["config"]["strategy"] == "mt" and metrics["test"] == saved["test"]
    assert len((tmp_path / "run" / "log.csv").read_text().splitlines()) == 1 + saved["epochs_run"]


@pytest.mark.parametrize("mode", ["packed", "pairs"])
def test_sasrec_learns_transitions_better_than_popularity(tmp_path, split, mode):
    pop = train(TrainConfig(model="pop", **TINY), tmp_path / "pop", split=split)
    cfg = TrainConfig(strategy="mt", mode=mode, **{**TINY, "epochs": 8, "dim": 32})
    sas = train(cfg, tmp_path / mode, split=split)
    assert sas["valid"]["ndcg@10"] > pop["valid"]["ndcg@10"] + 0.02


def test_same_seed_same_metrics(tmp_path, split):
    cfg = TrainConfig(strategy="genpas", alpha=1, beta=1, gamma=0, **TINY)
    a = train(cfg, tmp_path / "a", split=split)
    b = train(cfg, tmp_path / "b", split=split)
    assert a["valid"] == b["valid"] and a["test"] == b["test"]


class Kill(Exception):
    pass


def test_resume_after_a_kill_ends_with_identical_metrics(tmp_path, split):
    cfg = TrainConfig(strategy="sw", **{**TINY, "epochs": 4})
    full = train(cfg, tmp_path / "full", split=split)
    seen = {"n": 0}

    def kill_in_epoch_2(batch):
        seen["n"] += 1
        if seen["n"] == 2 * steps + 2:
            raise Kill

    trainer = Trainer(cfg, tmp_path / "killed", split=split, on_batch=kill_in_epoch_2)
    from genpas.augment.batches import StreamConfig, TrainingStream

    steps = len(TrainingStream(split.train, trainer.strategy, StreamConfig(cfg.mode, cfg.max_len, cfg.batch_size)))
    with pytest.raises(Kill):
        trainer.fit()
    last = tmp_path / "killed" / "last.pt"
    saved = torch.load(last, weights_only=True)
    resumed = Trainer(cfg, tmp_path / "killed", split=split).fit(resume=True)
    assert resumed["valid"] == full["valid"] and resumed["test"] == full["test"]
    assert resumed["best_epoch"] == full["best_epoch"]
    assert full["eval_seconds"] > 0 and resumed["eval_seconds"] > 0  # counted over both sessions
    # A checkpoint written before evaluation time was counted: the run's evaluation seconds are unknown, not partial.
    del saved["trainer"]["valid_seconds"]
    torch.save(saved, last)
    (tmp_path / "killed" / "metrics.json").unlink()
    assert Trainer(cfg, tmp_path / "killed", split=split).fit(resume=True)["eval_seconds"] is None


def test_training_plus_evaluation_seconds_of_records():
    from genpas.search.experiments import _seconds_with_evaluation
    from genpas.search.provenance import provenance
    from genpas.search.run_store import seconds_with_evaluation

    assert seconds_with_evaluation({"train_seconds": 10.0, "eval_seconds": 2.5, "wall_seconds": 1.0}) == 12.5
    assert seconds_with_evaluation({"train_seconds": 10.0, "eval_seconds": None, "wall_seconds": 30.0}) is None
    assert seconds_with_evaluation({"train_seconds": 10.0, "wall_seconds": 12.0}) == 12.0  # older, trained at once
    assert seconds_with_evaluation({"train_seconds": 10.0, "wall_seconds": 4.0}) is None  # older, resumed
    runs = [{"train_seconds": 60.0, "eval_seconds": 60.0}, {"train_seconds": 600.0, "wall_seconds": 5.0}]
    assert _seconds_with_evaluation(runs) == {"wall_seconds_of_runs": None, "runs_without_eval_seconds": 1}
    result = {"config": TrainConfig().to_dict(), "seeds": [0], "experiment": "strategies",
              "train_seconds_of_runs": 660.0, **_seconds_with_evaluation(runs)}
    assert "the time with evaluation is not known: 1 run resumed" in provenance(result)
    result.update(_seconds_with_evaluation(runs[:1]))
    assert "(2.0 min with evaluation;" in provenance(result)
    assert "batch 64, lr" in provenance(result)  # draw order: nothing said
    assert "bf16 autocast on CUDA, float32 elsewhere, at most" in provenance(result)  # auto, no devices recorded
    result["runs"] = [{"device": "cpu"}]
    assert ", float32, at most" in provenance(result)  # auto on a CPU
    result["runs"] = [{"device": "cuda:0"}]
    assert ", bf16 autocast, at most" in provenance(result)
    result["runs"] = [{"device": "cuda:0"}, {"device": "cpu"}]
    assert "bf16 autocast on CUDA, float32 elsewhere, at most" in provenance(result)
    result["runs"] = [{"device": "cuda:0", "precision": "fp32"}]  # a GPU without bf16: auto resolved to float32
    assert ", float32, at most" in provenance(result)
    del result["runs"]
    result["config"] = TrainConfig(precision="bf16").to_dict()
    assert ", bf16 autocast, at most" in provenance(result)
    del result["config"]["precision"]  # a result from before the option: it trained as auto does
    assert "bf16 autocast on CUDA, float32 elsewhere" in provenance(result)
    result["config"] = TrainConfig(group_by_length=8).to_dict()
    assert "batch 64 (grouped by input length, 8 batches at a time), lr" in provenance(result)


def test_time_budget_stops_training(tmp_path, split):
    metrics = train(TrainConfig(strategy="mt", time_budget_minutes=1e-9, **TINY), tmp_path / "t", split=split)
    assert metrics["epochs_run"] == 1 and metrics["stopped_by"] == "time_budget"


def test_a_run_ranked_without_the_history_also_reports_it_kept(tmp_path, split):
    from genpas.train.checkpoint import load_weights

    cfg = TrainConfig(strategy="mt", exclude_history=True, **TINY)
    m = train(cfg, tmp_path / "run", split=split)
    assert m["test"]["exclude_history"] and not m["test_history_kept"]["exclude_history"]
    trainer = Trainer(cfg, tmp_path / "again", split=split)  # the same weights, ranked with the history kept
    load_weights(tmp_path / "run" / "best.safetensors", trainer.model)
    assert trainer.evaluate("test", exclude_history=False) == m["test_history_kept"]
    assert m["test"]["ndcg@10"] >= m["test_history_kept"]["ndcg@10"]  # removing seen items only lifts the target
    assert "test_history_kept" not in train(TrainConfig(strategy="mt", **TINY), tmp_path / "plain", split=split)


def test_metrics_say_why_training_ended(tmp_path, split):
    from genpas.search.experiments import ended_by

    capped = train(TrainConfig(strategy="mt", **TINY), tmp_path / "capped", split=split)
    assert capped["epochs_run"] == TINY["epochs"] and capped["stopped_by"] == "epochs"
    # steps of 1e-30 leave float32 weights as they are: no epoch beats the first, so patience 1 stops after two
    flat = train(TrainConfig(strategy="mt", **{**TINY, "lr": 1e-30, "patience": 1}), tmp_path / "flat", split=split)
    assert (flat["epochs_run"], flat["best_epoch"], flat["stopped_by"]) == (2, 0, "patience")
    pop = train(TrainConfig(model="pop", **TINY), tmp_path / "pop", split=split)
    assert pop["stopped_by"] is None
    # the last allowed epoch also spends the budget: the run got all its epochs, so it ended by the cap
    both = train(TrainConfig(strategy="mt", **{**TINY, "epochs": 1}, time_budget_minutes=1e-9), tmp_path / "both",
                 split=split)
    assert both["stopped_by"] == "epochs"
    for m in (capped, flat, pop, both):  # a record written before metrics.json said it is read from its counts
        assert ended_by({k: v for k, v in m.items() if k != "stopped_by"}) == m["stopped_by"]


def test_config_yaml_round_trip_and_errors(tmp_path):
    cfg = TrainConfig(strategy="genpas", alpha=1.0, beta=float("inf"), gamma=float("-inf"))
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert TrainConfig.from_yaml(path) == cfg
    path.write_text("strategy: mt\nlearning_rate: 0.1\n")
    with pytest.raises(GenpasError, match="unknown key 'learning_rate'"):
        TrainConfig.from_yaml(path)
    path.write_text("strategy: [mt\n")
    with pytest.raises(GenpasError, match="invalid YAML"):
        TrainConfig.from_yaml(path)
    path.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(GenpasError):
        TrainConfig.from_yaml(path)


def test_cli_train_config_with_flag_override_then_evaluate(tmp_path, capsys):
    from genpas.cli import main
    from genpas.data.synth import synthesize, write_table

    write_table(synthesize(SynthConfig(users=80, items=30, mean_length=10, seed=1)), tmp_path / "log.csv")
    (tmp_path / "exp.yaml").write_text(
        f"data: {tmp_path / 'log.csv'}\nstrategy: lt\nepochs: 2\ndim: 16\nlayers: 1\nheads: 1\nmax_len: 6\n"
        "batch_size: 16\nprogress: false\n")
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(tmp_path / "exp.yaml"), "--strategy", "mt", "--out", str(run)])
    assert exc.value.code == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config"]["strategy"] == "mt"  # the flag overrides the file
    assert metrics["config"]["epochs"] == 2 and metrics["config"]["dim"] == 16  # the file overrides defaults
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--run", str(run)])
    assert exc.value.code == 0
    again = json.loads(capsys.readouterr().out)
    assert again["test"]["ndcg@10"] == pytest.approx(metrics["test"]["ndcg@10"])
    assert json.loads((run / "evaluation.json").read_text())["test"]["ndcg@10"] == again["test"]["ndcg@10"]
    config = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(config.replace("dim: 16", "dim: 32"))  # edited: the weights no longer fit
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--run", str(run)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "best.safetensors: trained as dim = 16, but the run's config.yaml builds dim = 32 (was it edited?)" in err


def test_checkpoints_load_without_pickle(tmp_path, split):
    train(TrainConfig(strategy="mt", **{**TINY, "epochs": 1}), tmp_path / "r", split=split)
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "trainer"} <= set(state)
    from safetensors.torch import load_file

    assert "item_emb.weight" in load_file(str(tmp_path / "r" / "best.safetensors"))


def test_main_job_on_a_small_log(tmp_path, capsys):
    """`genpas run` end to end (tiny model, small log): table, JSON, Markdown, PNG; a rerun reuses finished runs."""
    from genpas.cli import main
    from genpas.data.synth import synthesize, write_table

    write_table(synthesize(SynthConfig(users=60, items=25, mean_length=8, seed=3)), tmp_path / "log.csv")
    (tmp_path / "tiny.yaml").write_text("dim: 16\nlayers: 1\nheads: 1\nmax_len: 6\nbatch_size: 16\npatience: 2\n")
    args = ["run", "--data", str(tmp_path / "log.csv"), "--out", str(tmp_path / "res"), "--config",
            str(tmp_path / "tiny.yaml"), "--epochs", "2", "--time-budget", "0.2", "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for label in ("Popularity", "LT", "MT", "SW", "GenPAS(0.5, 0, 0)"):
        assert label in out
    results = json.loads((tmp_path / "res" / "results.json").read_text())["results"]
    assert set(results) == {"Popularity", "LT", "MT", "SW", "GenPAS(0.5, 0, 0)"}
    assert all(set(r["test"]) >= {"recall@5", "ndcg@5", "recall@10", "ndcg@10"} for r in results.values())
    assert (tmp_path / "res" / "results.png").read_bytes()[:4] == b"\x89PNG"
    assert "| MT |" in (tmp_path / "res" / "results.md").read_text()
    # GenPAS against each other strategy over the same test users, from the runs' ranks.npz: exactly the difference
    paired = json.loads((tmp_path / "res" / "results.json").read_text())["genpas_vs_by_user"]
    assert set(paired) == {"Popularity", "LT", "MT", "SW"}
    g = results["GenPAS(0.5, 0, 0)"]["test"]["ndcg@10"]
    assert paired["MT"]["difference"] == pytest.approx(g - results["MT"]["test"]["ndcg@10"], abs=1e-12)
    line = next(x for x in out.splitlines() if x.startswith("GenPAS(0.5, 0, 0) - MT: test NDCG@10"))
    assert f"{paired['MT']['difference']:+.4f} ± {paired['MT']['standard_error']:.4f} over the same users" in line
    assert line in (tmp_path / "res" / "results.md").read_text()
    # How fast GenPAS reached each other strategy's quality, from the runs' training logs (popularity has none)
    quality = json.loads((tmp_path / "res" / "results.json").read_text())["genpas_quality_steps"]
    assert set(quality) == {"LT", "MT", "SW"} and quality["MT"]["seeds"][0]["seed"] == 0
    mt_curve = [(int(r["optimizer_steps"]), float(r["valid_ndcg@10"]))
                for r in csv.DictReader(open(tmp_path / "res" / "mt" / "log.csv"))]
    level = 0.98 * max(v for _, v in mt_curve)
    assert quality["MT"]["seeds"][0]["baseline_steps"] == next(s for s, v in mt_curve if v >= level)
    line = next(x for x in out.splitlines() if x.startswith("Optimizer steps (and the epochs they make) to MT's validation quality"))
    assert line in (tmp_path / "res" / "results.md").read_text()
    (tmp_path / "res" / "lt" / "ranks.npz").write_bytes(b"damaged")  # left out with a warning, the job still ends
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0
    assert set(json.loads((tmp_path / "res" / "results.json").read_text())["genpas_vs_by_user"]) == {
        "Popularity", "MT", "SW"}
    stamp = (tmp_path / "res" / "mt" / "metrics.json").stat().st_mtime_ns
    with pytest.raises(SystemExit):
        main(args)
    assert (tmp_path / "res" / "mt" / "metrics.json").stat().st_mtime_ns == stamp  # reused, not retrained


def test_resume_refuses_a_different_configuration(tmp_path, split):
    train(TrainConfig(strategy="mt", **{**TINY, "epochs": 1}), tmp_path / "r", split=split)
    with pytest.raises(GenpasError, match="trained with strategy = 'mt'"):
        Trainer(TrainConfig(strategy="lt", **{**TINY, "epochs": 2}), tmp_path / "r", split=split).fit(resume=True)
    more = Trainer(TrainConfig(strategy="mt", **{**TINY, "epochs": 2}), tmp_path / "r", split=split).fit(resume=True)
    assert more["epochs_run"] == 2  # more epochs is a legitimate continuation


def test_resume_and_the_best_weights_refuse_other_data(tmp_path, split):
    """Item codes mean what the data's item ids said at training time: another catalogue (here the same events with
    the item ids in another order) is refused on resume and when the best weights are loaded."""
    from genpas.data.store import SequenceStore
    from genpas.train.checkpoint import load_weights

    full = split.full
    renamed = leave_one_out(SequenceStore(full.offsets, full.items, full.times, full.user_ids, full.item_ids[::-1]))
    assert renamed.full.item_fingerprint() != full.item_fingerprint()
    train(TrainConfig(strategy="mt", **{**TINY, "epochs": 1}), tmp_path / "r", split=split)
    with pytest.raises(GenpasError, match="the data has changed since .*last.pt was written"):
        Trainer(TrainConfig(strategy="mt", **{**TINY, "epochs": 2}), tmp_path / "r", split=renamed).fit(resume=True)
    trainer = Trainer(TrainConfig(strategy="mt", **TINY), tmp_path / "x", split=renamed)
    with pytest.raises(GenpasError, match="the run's data has changed since it was trained"):
        load_weights(tmp_path / "r" / "best.safetensors", trainer.model, renamed.full.item_fingerprint())
    load_weights(tmp_path / "r" / "best.safetensors", trainer.model, full.item_fingerprint())  # the same data: fine
    # Files written before the fingerprint existed are read as before (resumed with a warning).
    from safetensors.torch import load_file, save_file

    save_file(load_file(tmp_path / "r" / "best.safetensors"), tmp_path / "r" / "best.safetensors")  # no metadata
    load_weights(tmp_path / "r" / "best.safetensors", trainer.model, renamed.full.item_fingerprint())
    state = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    del state["trainer"]["items"]
    torch.save(state, tmp_path / "r" / "last.pt")
    more = Trainer(TrainConfig(strategy="mt", **{**TINY, "epochs": 2}), tmp_path / "r", split=split).fit(resume=True)
    assert more["epochs_run"] == 2


def test_lr_plateau_halves_the_rate_after_epochs_without_gain(tmp_path, split):
    import csv

    cfg = TrainConfig(strategy="mt", lr_plateau=1, **{**TINY, "epochs": 12, "patience": 20, "warmup_steps": 0, "lr": 0.05})
    train(cfg, tmp_path / "p", split=split)
    rows = list(csv.DictReader(open(tmp_path / "p" / "log.csv")))
    best = -1.0
    for prev, row in zip(rows, rows[1:]):
        improved = float(prev["valid_ndcg@10"]) > best
        best = max(best, float(prev["valid_ndcg@10"]))
        expected = float(prev["lr"]) * (1.0 if improved else 0.5)
        assert float(row["lr"]) == pytest.approx(expected)
    assert any(float(r["lr"]) < cfg.lr for r in rows)


def test_a_fresh_run_never_overwrites_another(tmp_path, split):
    cfg = TrainConfig(strategy="mt", **{**TINY, "epochs": 1})
    train(cfg, tmp_path / "r", split=split)
    before = (tmp_path / "r" / "metrics.json").read_bytes()
    with pytest.raises(GenpasError, match="already holds a run .* --resume"):
        train(cfg, tmp_path / "r", split=split)
    assert (tmp_path / "r" / "metrics.json").read_bytes() == before


def test_log_is_exact_after_an_interruption_between_checkpoint_and_log(tmp_path, split, monkeypatch):
    """A kill after last.pt is saved but before log.csv gets the epoch's row: the resumed run's log holds every
    epoch exactly once, equal to an uninterrupted run's except for the wall times."""
    cfg = TrainConfig(strategy="mt", **{**TINY, "epochs": 4, "patience": 10})
    train(cfg, tmp_path / "full", split=split)
    real_log = Trainer._log

    def log_then_die(self, row, writer):
        if row["epoch"] == 1:
            raise Kill
        real_log(self, row, writer)

    monkeypatch.setattr(Trainer, "_log", log_then_die)
    with pytest.raises(Kill):
        Trainer(cfg, tmp_path / "killed", split=split).fit()
    monkeypatch.setattr(Trainer, "_log", real_log)
    Trainer(cfg, tmp_path / "killed", split=split).fit(resume=True)

    def rows(run):
        import csv

        return [{k: v for k, v in r.items() if k != "epoch_seconds"}
                for r in csv.DictReader(open(tmp_path / run / "log.csv"))]

    assert [r["epoch"] for r in rows("killed")] == ["0", "1", "2", "3"]
    assert rows("killed") == rows("full")


def test_grouping_by_length_trains_the_same_compute_as_another_run(tmp_path, split):
    """--group-by-length changes which rows share a step, not the epoch: the same optimizer steps, rows, targets and
    effective targets; it is another run (its own key), and runs written before the option keep theirs."""
    from genpas.search.run_store import run_key
    from genpas.train.config import LEGACY

    plain = train(TrainConfig(strategy="genpas", alpha=1.0, beta=0.5, gamma=1.0, **TINY), tmp_path / "a", split=split)
    grouped = train(TrainConfig(strategy="genpas", alpha=1.0, beta=0.5, gamma=1.0, group_by_length=8, **TINY),
                    tmp_path / "b", split=split)
    for key in ("optimizer_steps", "train_rows", "train_targets"):
        assert grouped[key] == plain[key] > 0
    assert grouped["effective_targets"] == pytest.approx(plain["effective_targets"])
    assert grouped["config"]["group_by_length"] == 8 and 0 < grouped["valid"]["ndcg@10"] <= 1
    cfg = TrainConfig(strategy="mt", **TINY)
    before = {k: v for k, v in cfg.to_dict().items() if k != "group_by_length"}
    assert run_key(TrainConfig.from_dict({**LEGACY, **before})) == run_key(cfg)
    assert run_key(TrainConfig(strategy="mt", group_by_length=8, **TINY)) != run_key(cfg)
    with pytest.raises(GenpasError, match="--group-by-length must be >= 0"):
        TrainConfig(group_by_length=-1)
    with pytest.raises(GenpasError, match="--group-by-length must be 0 .draw order. or >= 2 batches, got 1"):
        TrainConfig(group_by_length=1)  # the same batches as 0: one spelling, one run key
