"""Training precision: what `--precision` resolves to, the bf16 path's attention, bf16 runs end to end, and runs
written before the option existed (they trained in float32 and keep their keys and their resumability)."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn.functional as F

from genpas.cli import main
from genpas.data.split import leave_one_out
from genpas.data.synth import SynthConfig, synthesize_store
from genpas.errors import GenpasError
from genpas.models import SASRec, SASRecConfig
from genpas.models.sasrec import explicit_attention
from genpas.search.experiments import run_key
from genpas.train.build import resolve_precision
from genpas.train.config import LEGACY, TrainConfig, same_config
from genpas.train.run_dir import fresh_or_resumable
from genpas.train.trainer import train

TINY = dict(dim=16, layers=1, heads=1, max_len=8, batch_size=32, epochs=2, patience=5, progress=False,
            warmup_steps=5, eval_batch_size=64)


@pytest.fixture(scope="module")
def split():
    store = synthesize_store(SynthConfig(users=120, items=60, mean_length=10, zipf=0.3, p_transition=0.9,
                                         p_repeat=0.0, seed=1))
    return leave_one_out(store)


def test_precision_resolves_by_device_and_hardware(monkeypatch, caplog):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", cpu) == "fp32"  # the CPU default stays exact (docs/performance.md)
    assert resolve_precision("auto", torch.device("mps")) == "fp32"
    monkeypatch.setattr("genpas.train.build.native_cpu_bf16", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert resolve_precision("bf16", cpu) == "bf16"
    assert "no native bf16" in caplog.text
    with pytest.raises(GenpasError, match="--precision bf16 runs on a CPU or a CUDA device"):
        resolve_precision("bf16", torch.device("mps"))
    with pytest.raises(GenpasError, match="--precision must be one of auto, fp32, bf16"):
        TrainConfig(precision="fp16")


def test_explicit_attention_equals_the_fused_kernel():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 9, 8) for _ in range(3))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert torch.allclose(explicit_attention(q, k, v, causal=True), expected, atol=1e-6)
    keys = torch.randn(3, 2, 5, 8), torch.randn(3, 2, 5, 8)  # cross-attention to 5 keys, the last ones padding
    mask = (torch.arange(5) < torch.tensor([5, 3, 1])[:, None])[:, None, None, :]
    expected = F.scaled_dot_product_attention(q, *keys, attn_mask=mask)
    assert torch.allclose(explicit_attention(q, *keys, mask), expected, atol=1e-6)
    blind = torch.zeros(3, 1, 1, 5, dtype=torch.bool)  # no key to see at all: zeros, as the fused kernel gives
    assert torch.equal(explicit_attention(q, *keys, blind), F.scaled_dot_product_attention(q, *keys, attn_mask=blind))
    self_mask = (torch.arange(9) < torch.tensor([9, 4, 2])[:, None])[:, None, None, :]
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=self_mask, is_causal=False)
    assert torch.allclose(explicit_attention(q, k, v, self_mask), expected, atol=1e-6)


def test_sasrec_under_cpu_autocast_stays_causal_and_close_to_float32():
    torch.manual_seed(0)
    model = SASRec(SASRecConfig(num_items=30, dim=16, layers=2, heads=2, max_len=10)).eval()
    inputs = torch.randint(1, 31, (4, 10))
    changed = inputs.clone()
    changed[:, 6:] = torch.randint(1, 31, (4, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = model(inputs), model(changed)
    assert torch.equal(a[:, :6], b[:, :6]), "a later item changed an earlier output under bf16"
    assert not torch.equal(a[:, 6:], b[:, 6:])
    exact = model(inputs)
    assert a.dtype == torch.float32 and (a - exact).abs().max() < 0.1  # bf16 products: about 3 significant digits


def test_hstu_under_cpu_autocast_stays_causal():
    from genpas.models.hstu import HSTU, HSTUConfig

    torch.manual_seed(0)
    model = HSTU(HSTUConfig(num_items=30, dim=16, layers=2, heads=2, attention_dim=8, linear_dim=8, max_len=10)).eval()
    inputs = torch.randint(1, 31, (4, 10))
    times = torch.cumsum(torch.randint(1, 10_000, (4, 11)), 1)
    changed = inputs.clone()
    changed[:, 6:] = torch.randint(1, 31, (4, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = model(inputs, times), model(changed, times)
    assert torch.equal(a[:, :6], b[:, :6]) and not torch.equal(a[:, 6:], b[:, 6:])
    assert (a - model(inputs, times)).abs().max() < 0.1


def test_bf16_run_trains_evaluates_and_repeats_exactly(tmp_path, split):
    cfg = TrainConfig(strategy="mt", precision="bf16", **TINY)
    a = train(cfg, tmp_path / "a", split=split)
    b = train(cfg, tmp_path / "b", split=split)
    assert a["precision"] == "bf16" and a["valid"] == b["valid"] and a["test"] == b["test"]
    exact = train(TrainConfig(strategy="mt", precision="fp32", **TINY), tmp_path / "fp32", split=split)
    assert exact["precision"] == "fp32"
    assert exact["valid"] != a["valid"]  # the two precisions are different runs, each exact on its own
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["config"]["precision"] == "bf16"


def test_runs_from_before_the_option_keep_their_meaning(tmp_path, split):
    """A run written before `precision` existed trained as `auto` does today (bf16 autocast on CUDA, float32
    elsewhere), and its config.yaml, checkpoint and ledger record lack the key: it keeps its experiment key, resumes
    under the default, and a job owning its directory keeps it; under another precision it is another run."""
    cfg = TrainConfig(strategy="mt", **TINY)  # the default precision
    assert cfg.precision == "auto" == LEGACY["precision"]
    run = tmp_path / "old"
    train(cfg, run, split=split)
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text("".join(line for line in text.splitlines(True) if not line.startswith("precision")))
    assert TrainConfig.from_run(run / "config.yaml").to_dict() == cfg.to_dict()
    legacy = {k: v for k, v in cfg.to_dict().items() if k != "precision"}
    assert same_config(legacy, cfg) and not same_config(legacy, TrainConfig(strategy="mt", precision="fp32", **TINY))
    assert run_key(TrainConfig.from_dict({**LEGACY, **legacy})) == run_key(cfg)
    assert run_key(TrainConfig(strategy="mt", precision="bf16", **TINY)) != run_key(cfg)
    assert run_key(TrainConfig(strategy="mt", precision="fp32", **TINY)) != run_key(cfg)
    fresh_or_resumable(cfg, run)  # a job owning the directory keeps it for the same configuration
    assert (run / "last.pt").exists()
    fresh_or_resumable(TrainConfig(strategy="mt", threads=1, **{**TINY, "epochs": 9, "eval_batch_size": 7}), run)
    assert (run / "last.pt").exists()  # ...and for one that only changes what a resumed run may change
    fresh_or_resumable(TrainConfig(strategy="mt", precision="bf16", **TINY), run)  # another precision: retrained
    assert {p.name for p in run.iterdir()} <= {".lock"}


def test_main_job_reuses_a_finished_run_from_before_the_option(tmp_path, monkeypatch):
    """`genpas run` (search.compare) reuses a finished run whose metrics.json predates `precision`."""
    from genpas.data.synth import synthesize, write_table
    from genpas.search import compare as main_job

    write_table(synthesize(SynthConfig(users=40, items=20, mean_length=6, seed=3)), tmp_path / "log.csv")
    base = TrainConfig(data=str(tmp_path / "log.csv"), **{**TINY, "epochs": 1})
    main_job.compare(base, tmp_path / "res", names=("mt",))
    saved = tmp_path / "res" / "mt" / "metrics.json"
    metrics = json.loads(saved.read_text())
    del metrics["config"]["precision"]
    saved.write_text(json.dumps(metrics))

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(main_job, "train_owned", no_training)
    results = main_job.compare(base, tmp_path / "res", names=("mt",))
    assert results["MT"]["test"] == metrics["test"]


def test_cli_refuses_an_unknown_precision(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "ml-100k", "--precision", "half", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and "--precision must be one of auto, fp32, bf16" in err[0]
    assert not (tmp_path / "r").exists()
