"""The run-size check (train/memory.py): a run that cannot fit is refused before any allocation, with one line."""

from __future__ import annotations

import re

import pytest
import torch

from genpas.cli import main
from genpas.data.synth import SynthConfig, synthesize, write_table
from genpas.train import memory
from genpas.train.build import build_model, load_split
from genpas.train.config import TrainConfig


@pytest.fixture
def log(tmp_path):
    write_table(synthesize(SynthConfig(users=40, items=30, mean_length=8, seed=1)), tmp_path / "log.csv")
    return tmp_path / "log.csv"


@pytest.mark.parametrize("model", ["sasrec", "hstu"])
def test_the_meta_count_is_the_built_models_count(log, model):
    cfg = TrainConfig(data=str(log), model=model, dim=16, layers=1, heads=2, max_len=7)
    split = load_split(cfg)
    real, _ = build_model(cfg, split)
    assert memory.parameter_count(cfg, split) == sum(p.numel() for p in real.parameters())


def test_lower_bound_terms(log):
    cfg = TrainConfig(data=str(log), batch_size=4, max_len=5, eval_batch_size=3)
    need = memory.lower_bound_bytes(cfg, 100, 10)
    assert need == {"parameters": 160, "logits": 2 * 4 * 4 * 100, "evaluation": 4 * 3 * 100}
    assert memory.total(need) == 160 + 2 * 4 * 4 * 100  # logits and evaluation scores never coexist: the larger
    sampled = TrainConfig(data=str(log), batch_size=4, max_len=5, negatives=9)
    assert memory.lower_bound_bytes(sampled, 100, 10)["logits"] == 2 * 4 * 4 * 10
    small = memory.lower_bound_bytes(cfg, 100, 10, rows=2, users=1)  # fewer rows and users than a batch holds
    assert small["logits"] == 2 * 4 * 2 * 100 and small["evaluation"] == 4 * 1 * 100


def test_the_fewest_rows_of_an_epoch(log):
    cfg = TrainConfig(data=str(log))
    split = load_split(cfg)
    assert memory._least_rows(cfg, split) == int((split.train.lengths >= 2).sum()) > 3
    assert memory._least_rows(TrainConfig(data=str(log), num_pairs=3), split) == 3


def test_a_run_is_refused_exactly_when_its_lower_bound_exceeds_the_free_memory(log, monkeypatch):
    cfg = TrainConfig(data=str(log), dim=16, layers=1, heads=2, max_len=7)
    split = load_split(cfg)
    need = memory.total(memory.lower_bound_bytes(cfg, split.full.num_items, memory.parameter_count(cfg, split),
                                                 memory._least_rows(cfg, split), len(split.eval_users)))
    monkeypatch.setattr(memory, "available_bytes", lambda device: need)
    assert memory.memory_problem(cfg, split, torch.device("cpu")) is None  # exactly enough: allowed
    monkeypatch.setattr(memory, "available_bytes", lambda device: need - 1)
    assert re.fullmatch(r"this run needs at least .* GiB \(parameters .*, logits .*, evaluation .*\) and cpu has .* "
                        r"GiB free: lower --dim.*", memory.memory_problem(cfg, split, torch.device("cpu")))
    monkeypatch.setattr(memory, "available_bytes", lambda device: None)  # unknown: no check
    assert memory.memory_problem(cfg, split, torch.device("cpu")) is None


def test_evaluating_a_saved_run_is_not_held_to_its_training_memory(tmp_path, log, monkeypatch, capsys):
    code, err = run(capsys, "train", "--data", log, "--out", tmp_path / "run", "--epochs", "1", "--dim", "8",
                    "--heads", "1", "--no-progress")
    assert code == 0, err
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1)  # a machine with no memory to train
    code, err = run(capsys, "train", "--data", log, "--out", tmp_path / "again", "--epochs", "1", "--dim", "8",
                    "--heads", "1", "--no-progress")
    assert code == 2 and "this run needs at least" in err and not (tmp_path / "again").exists()
    code, err = run(capsys, "evaluate", "--run", tmp_path / "run")
    assert code == 0, err


def test_a_configs_threads_and_workers_are_lowered_to_the_cores_with_a_warning(caplog):
    with caplog.at_level("WARNING"):
        assert memory.within_cores(memory.cores() + 5, "threads") == memory.cores()
    assert f"threads: {memory.cores() + 5} in the run's config exceeds this machine's {memory.cores()} cores" in \
        caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert memory.within_cores(1, "num_workers") == 1 and memory.within_cores(None, "threads") is None
    assert caplog.text == ""


def run(capsys, *args):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(list(map(str, args)))
    return exc.value.code, capsys.readouterr().err


@pytest.mark.parametrize("flags,message", [
    (["--dim", "1000000"], "this run needs at least"),  # 10^12 parameters: terabytes
    (["--max-len", "1000000000"], "--max-len must be <= 1000000"),  # past any model: refused before sizing it
    (["--threads", "100000"], "--threads 100000 exceeds this machine's"),
    (["--workers", "100000"], "--workers 100000 exceeds this machine's"),
])
def test_sizes_and_counts_past_the_machine_are_one_line(tmp_path, log, capsys, flags, message):
    code, err = run(capsys, "train", "--data", log, "--out", tmp_path / "run", "--epochs", "1", *flags)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20 GiB"),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"),
                                   MemoryError()])
def test_an_allocation_that_fails_later_is_one_line(tmp_path, log, capsys, monkeypatch, error):
    import genpas.train.trainer as trainer

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(trainer, "train", fail)
    code, err = run(capsys, "train", "--data", log, "--out", tmp_path / "run")
    assert code == 2 and err.strip().startswith("error: out of memory") and len(err.strip().splitlines()) == 1


def test_another_runtime_error_is_not_called_out_of_memory(tmp_path, log, capsys, monkeypatch):
    import genpas.train.trainer as trainer

    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(trainer, "train", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", "--data", str(log), "--out", str(tmp_path / "run")])


def test_gpu_memory_this_process_holds_cached_counts_as_free(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (100, 1000))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 50)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 20)
    assert memory.available_bytes(torch.device("cuda", 0)) == 100 + 50 - 20  # an earlier run's cache is reusable
