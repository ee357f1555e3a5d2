"""No silent NaN (a diverged model is an error, never a hit) and the compute every run reports."""

from __future__ import annotations

import json
import math

import pytest
import torch

from genpas.data.split import leave_one_out
from genpas.data.synth import SynthConfig, synthesize_store
from genpas.errors import GenpasError
from genpas.models import Popularity
from genpas.train.config import TrainConfig
from genpas.train.evaluate import evaluate
from genpas.train.loss import COMPUTE_KEYS
from genpas.train.metrics import target_ranks
from genpas.train.trainer import Trainer, train

TINY = dict(dim=16, layers=1, heads=1, max_len=8, batch_size=32, epochs=3, patience=5, progress=False,
            warmup_steps=5, eval_batch_size=64)


@pytest.fixture(scope="module")
def split():
    store = synthesize_store(SynthConfig(users=120, items=60, mean_length=12, seed=4))
    return leave_one_out(store)


def test_nan_scores_never_rank_high():
    nan = math.nan
    scores = torch.tensor([[nan, 0.5, 0.2, 0.1], [0.3, nan, nan, 0.1], [nan, nan, nan, nan]])
    ranks = target_ranks(scores, torch.tensor([0, 0, 1])).tolist()
    assert ranks[0] == 4  # a NaN target ranks last
    assert ranks[1] == 1  # NaN elsewhere counts below a real score
    assert ranks[2] == 4  # all NaN: pessimistic ties, last


class NaNModel(torch.nn.Module):
    def __init__(self, num_items, bad_rows=(0,)):
        super().__init__()
        self.num_items, self.bad_rows = num_items, list(bad_rows)

    def rank_scores(self, inputs):
        scores = torch.rand(len(inputs), self.num_items)
        scores[self.bad_rows] = math.nan
        return scores


def test_evaluation_refuses_nan_scores(split):
    with pytest.raises(GenpasError, match="NaN scores for 1 of .* valid users"):
        evaluate(NaNModel(split.full.num_items), split, "valid", max_len=8)
    pop = Popularity(torch.arange(split.full.num_items, dtype=torch.float32))  # finite scores still evaluate
    assert 0 <= evaluate(pop, split, "test", max_len=8, exclude_history=True)["ndcg@10"] <= 1


def test_a_nan_loss_stops_training_naming_the_epoch(tmp_path, split):
    cfg = TrainConfig(strategy="mt", **TINY)
    trainer = Trainer(cfg, tmp_path / "r", split=split)
    steps = {"n": 0}
    epoch_steps = trainer_steps(trainer)

    def poison(batch):  # from the second epoch on, the model's weights are NaN
        steps["n"] += 1
        if steps["n"] == epoch_steps + 1:
            with torch.no_grad():
                trainer.model.ln_f.weight.fill_(math.nan)

    trainer.on_batch = poison
    with pytest.raises(GenpasError, match=r"^epoch 1: the training loss is nan .* best epoch so far is 0"):
        trainer.fit()
    assert not (tmp_path / "r" / "metrics.json").exists()
    from genpas.train.checkpoint import load_weights

    load_weights(tmp_path / "r" / "best.safetensors", trainer.model)  # the kept best is epoch 0's, finite
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def trainer_steps(trainer) -> int:
    from genpas.augment.batches import StreamConfig, TrainingStream

    cfg = trainer.cfg
    return len(TrainingStream(trainer.split.train, trainer.strategy, StreamConfig(cfg.mode, cfg.max_len, cfg.batch_size)))


def test_non_finite_validation_stops_training(tmp_path, split):
    trainer = Trainer(TrainConfig(strategy="mt", **TINY), tmp_path / "r", split=split)
    real = trainer.evaluate
    calls = {"n": 0}

    def evaluate_then_diverge(which):
        calls["n"] += 1
        result = real(which)
        return result if calls["n"] == 1 else {**result, "ndcg@10": math.nan}

    trainer.evaluate = evaluate_then_diverge
    with pytest.raises(GenpasError, match=r"^epoch 1: validation NDCG is nan"):
        trainer.fit()
    rows = (tmp_path / "r" / "log.csv").read_text().splitlines()
    assert len(rows) == 2  # header and epoch 0: the diverged epoch is neither logged nor kept


def test_validation_nan_scores_name_the_epoch(tmp_path, split, monkeypatch):
    trainer = Trainer(TrainConfig(strategy="mt", **TINY), tmp_path / "r", split=split)
    monkeypatch.setattr(trainer.model, "rank_scores", NaNModel(split.full.num_items).rank_scores)
    with pytest.raises(GenpasError, match=r"^epoch 0: validation: the model gave NaN scores"):
        trainer.fit()
    assert not (tmp_path / "r" / "best.safetensors").exists()


@pytest.mark.parametrize("mode", ["packed", "pairs"])
def test_metrics_report_the_compute_spent(tmp_path, split, mode):
    metrics = train(TrainConfig(strategy="sw", mode=mode, **TINY), tmp_path / mode, split=split)
    saved = json.loads((tmp_path / mode / "metrics.json").read_text())
    for key in COMPUTE_KEYS:
        assert saved[key] == pytest.approx(metrics[key]) and key in saved["compute_at_best"]
    assert saved["optimizer_steps"] == saved["epochs_run"] * saved["steps_per_epoch"]
    assert saved["train_rows"] == saved["epochs_run"] * saved["draws_per_epoch"]
    assert saved["train_rows"] <= saved["effective_targets"] + 1e-6 <= saved["train_targets"] + 1e-6
    if mode == "pairs":
        assert saved["train_targets"] == saved["train_rows"]
    else:
        assert saved["train_targets"] > saved["train_rows"]  # a window serves several targets
    best = saved["compute_at_best"]["optimizer_steps"]
    assert best == (saved["best_epoch"] + 1) * saved["steps_per_epoch"]
    import csv

    rows = list(csv.DictReader(open(tmp_path / mode / "log.csv")))
    assert [int(r["optimizer_steps"]) for r in rows] == [saved["steps_per_epoch"] * (i + 1) for i in range(len(rows))]


def test_strategies_get_equal_steps_in_packed_runs(tmp_path, split):
    steps = {}
    for name, extra in (("mt", {}), ("sw", {}), ("genpas", dict(alpha=0.5, beta=0, gamma=0)), ("lt", {})):
        m = train(TrainConfig(strategy=name, **extra, **{**TINY, "epochs": 2, "patience": 5}), tmp_path / name,
                  split=split)
        steps[name] = m["optimizer_steps"]
    assert len(set(steps.values())) == 1, steps


def test_a_checkpoint_of_an_earlier_protocol_is_never_resumed(tmp_path, split):
    from genpas.train.checkpoint import load_state, save_state
    from genpas.train.trainer import fresh_or_resumable

    cfg = TrainConfig(strategy="mt", **{**TINY, "epochs": 1})
    train(cfg, tmp_path / "r", split=split)
    state = load_state(tmp_path / "r" / "last.pt")
    del state["trainer"]["protocol"]  # as written before epochs had equal steps
    save_state(tmp_path / "r" / "last.pt", state)
    with pytest.raises(GenpasError, match="earlier training protocol"):
        Trainer(TrainConfig(strategy="mt", **{**TINY, "epochs": 2}), tmp_path / "r", split=split).fit(resume=True)
    fresh_or_resumable(cfg, tmp_path / "r")  # a job-owned directory of the old protocol is emptied, not resumed
    assert {p.name for p in (tmp_path / "r").iterdir()} <= {".lock"}


def test_display_and_logging_options_never_change_results(tmp_path, split, monkeypatch):
    """A progress bar (forced on, as on a terminal) must not touch the random streams that training uses."""
    import io

    import tqdm.auto

    cfg = dict(TINY, epochs=2)
    quiet = train(TrainConfig(strategy="sw", **{**cfg, "progress": False}), tmp_path / "quiet", split=split)
    real, shown_bars = tqdm.auto.tqdm, []

    def always_on(*args, **kwargs):  # as on a terminal
        bar = real(*args, **{**kwargs, "disable": False, "file": io.StringIO()})
        shown_bars.append(bar)
        return bar

    monkeypatch.setattr(tqdm.auto, "tqdm", always_on)
    shown = train(TrainConfig(strategy="sw", **{**cfg, "progress": True, "eval_batch_size": 7}), tmp_path / "shown",
                  split=split)
    assert shown_bars and shown_bars[0].n > 0  # the bar was really shown and updated
    assert shown["valid"] == quiet["valid"] and shown["test"] == quiet["test"]


def test_a_run_directory_is_locked_while_training(tmp_path, split):
    import fcntl

    (tmp_path / "r").mkdir()
    with open(tmp_path / "r" / ".lock", "w") as other:  # another process's lock (a second open file conflicts)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(GenpasError, match="in use by another training process"):
            train(TrainConfig(strategy="mt", **{**TINY, "epochs": 1}), tmp_path / "r", split=split)
    train(TrainConfig(strategy="mt", **{**TINY, "epochs": 1}), tmp_path / "r", split=split)  # free again


def test_a_failed_start_leaves_nothing_and_a_refused_resume_changes_nothing(tmp_path, split):
    class Boom(Exception):
        pass

    def fail(batch):
        raise Boom

    with pytest.raises(Boom):
        Trainer(TrainConfig(strategy="mt", **TINY), tmp_path / "new", split=split, on_batch=fail).fit()
    assert not (tmp_path / "new").exists()
    train(TrainConfig(strategy="mt", **{**TINY, "epochs": 1}), tmp_path / "r", split=split)
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir() if p.is_file()}
    with pytest.raises(GenpasError, match="trained with lr"):
        Trainer(TrainConfig(strategy="mt", **{**TINY, "epochs": 2, "lr": 0.5}), tmp_path / "r", split=split).fit(
            resume=True)
    after = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir() if p.is_file()}
    assert after == before
