"""The evidence behind the CPU training defaults: milliseconds per SASRec-MT packed step (ml-100k, default model and
batch) under each option the speed issue names, measured in one process on the same batches.

    python bench/cpu_options.py [--threads N] [--steps 40] [--no-compile]

Variants: exact float32 (the reference), bf16 autocast with the fused attention kernel, bf16 autocast with the explicit
attention the model uses under CPU autocast (what `--precision bf16` runs), both again under
`torch.compile`, fused AdamW instead of the default implementation, and bf16 matrix-product throughput alone. Every step
is a full training step (forward, loss, backward, gradient clipping, AdamW). Compile times are reported apart (they
are paid once per run). Writes bench/results/cpu_options.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from genpas.augment import make_strategy  # noqa: E402
from genpas.augment.batches import StreamConfig, TrainingStream  # noqa: E402
from genpas.models import sasrec  # noqa: E402
from genpas.train.build import autocast, build_model, load_split  # noqa: E402
from genpas.train.config import TrainConfig  # noqa: E402
from genpas.train.loss import weighted_loss  # noqa: E402

WARMUP = 5


def fused_kernel_attention(self, x):  # CausalSelfAttention.forward with the fused kernel whatever the precision
    B, W, D = x.shape
    q, k, v = self.qkv(x).split(D, dim=2)
    q, k, v = (t.view(B, W, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, W, D)))


VARIANTS = {  # name -> (precision, attention override or None, compile, fused AdamW)
    "fp32": ("fp32", None, False, False),
    "bf16, fused attention kernel": ("bf16", fused_kernel_attention, False, False),
    "bf16, explicit attention (--precision bf16)": ("bf16", None, False, False),
    "fp32, fused AdamW": ("fp32", None, False, True),
    "bf16, fused AdamW": ("bf16", None, False, True),
    "fp32, torch.compile": ("fp32", None, True, False),
    "bf16, torch.compile": ("bf16", None, True, False),
}


def step_ms(cfg, split, batches, precision, attention, compiled, fused) -> dict:
    original = sasrec.CausalSelfAttention.forward
    if attention is not None:
        sasrec.CausalSelfAttention.forward = attention
    try:
        torch.manual_seed(0)
        model, _ = build_model(cfg, split)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, fused=True if fused else None)
        run = torch.compile(model) if compiled else model
        device = torch.device("cpu")

        def step(batch):
            with autocast(precision, device):
                loss, _ = weighted_loss(run, batch, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()

        start = time.perf_counter()
        for batch in batches[:WARMUP]:
            step(batch)
        warm = time.perf_counter() - start
        start = time.perf_counter()
        for batch in batches[WARMUP:]:
            step(batch)
        return {"ms_per_step": (time.perf_counter() - start) / (len(batches) - WARMUP) * 1e3,
                "first_steps_seconds": warm}
    finally:
        sasrec.CausalSelfAttention.forward = original


def matmul_gflops() -> dict:
    """Throughput of the step's largest product shapes in float32 and bf16 (what autocast can gain at most)."""
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        for m, k, n in ((3200, 64, 256), (1200, 64, 1682)):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            for _ in range(3):
                a @ b
            start = time.perf_counter()
            for _ in range(20):
                a @ b
            out[f"{str(dtype)[6:]} {m}x{k}x{n}"] = 2 * m * k * n * 20 / (time.perf_counter() - start) / 1e9
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(progress=False)
    split = load_split(cfg)
    stream = TrainingStream(split.train, make_strategy("mt"), StreamConfig("packed", cfg.max_len, cfg.batch_size, 0))
    batches = [b for _, b in zip(range(WARMUP + args.steps), iter(stream))]
    results: dict = {"threads": torch.get_num_threads(), "steps": args.steps, "variants": {}}
    for name, (precision, attention, compiled, fused) in VARIANTS.items():
        if compiled and args.no_compile:
            continue
        results["variants"][name] = step_ms(cfg, split, batches, precision, attention, compiled, fused)
        r = results["variants"][name]
        print(f"{name:36s} {r['ms_per_step']:7.1f} ms/step (first {WARMUP} steps {r['first_steps_seconds']:.1f} s)",
              flush=True)
    reference = results["variants"]["fp32"]["ms_per_step"]
    results["speedup_over_fp32"] = {n: reference / r["ms_per_step"] for n, r in results["variants"].items()}
    results["matmul_gflops"] = matmul_gflops()
    for shape, gflops in results["matmul_gflops"].items():
        print(f"matmul {shape:24s} {gflops:7.1f} GFLOP/s")
    path = write_results("cpu_options", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
