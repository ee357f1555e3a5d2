"""The evidence behind the CPU training defaults: milliseconds per SASRec-MT packed step (ml-100k, default model and
batch) under each option the speed issue names, measured in one process on the same batches.

    python bench/cpu_options.py [--threads N] [--steps 40] [--rounds 3] [--no-compile]

Variants: exact float32 (the reference), float32 with dropout masks from an integer hash (a candidate), bf16 autocast with the fused attention kernel, bf16 autocast with the explicit
attention the model uses under CPU autocast (what `--precision bf16` runs), both again under
`torch.compile`, fused AdamW instead of the default implementation, and bf16 matrix-product throughput alone. Every step
is a full training step (forward, loss, backward, gradient clipping, AdamW). The variants are timed in interleaved
rounds and each reports its best round, so a drift of the machine's speed does not favour one. Compile times are
reported apart (they are paid once per run). Writes bench/results/cpu_options.json.
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


class HashedDropout(torch.nn.Module):
    """Dropout whose mask comes from a 32-bit integer hash of (seed, element index), the seed drawn from torch's
    generator: elementwise integer ops (multi-threaded) instead of torch's sequential Bernoulli sampling. Measured
    here as a candidate only; the models use torch's dropout."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        z = torch.arange(x.numel(), dtype=torch.int32).view(x.shape) + seed
        z = z * -1640531535
        z = z ^ ((z >> 15) & 0x1FFFF)  # logical shifts: the arithmetic ones would copy the sign bit
        z = z * 0x2C1B3C6D
        z = z ^ ((z >> 12) & 0xFFFFF)
        return x * (z >= int(-(2**31) + self.p * 2**32)) * (1.0 / (1.0 - self.p))


def hashed_dropout(model) -> None:
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, torch.nn.Dropout):
                setattr(module, name, HashedDropout(child.p))


VARIANTS = {  # name -> (precision, attention override or None, compile, fused AdamW)
    "fp32": ("fp32", None, False, False),
    "bf16, fused attention kernel": ("bf16", fused_kernel_attention, False, False),
    "bf16, explicit attention (--precision bf16)": ("bf16", None, False, False),
    "fp32, fused AdamW": ("fp32", None, False, True),
    "bf16, fused AdamW": ("bf16", None, False, True),
    "fp32, hashed dropout masks": ("fp32", "hashed dropout", False, False),
    "fp32, torch.compile": ("fp32", None, True, False),
    "bf16, torch.compile": ("bf16", None, True, False),
}


class Variant:
    """One training setup (model, optimizer, precision, attention), built and warmed up once, timed in rounds."""

    def __init__(self, cfg, split, precision, attention, compiled, fused):
        torch.manual_seed(0)
        self.model, _ = build_model(cfg, split)
        if attention == "hashed dropout":
            hashed_dropout(self.model)
            attention = None
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, fused=True if fused else None)
        self.run = torch.compile(self.model) if compiled else self.model
        self.precision, self.attention, self.clip = precision, attention, cfg.grad_clip

    def steps(self, batches) -> float:
        """Seconds for one training step on each batch."""
        original = sasrec.CausalSelfAttention.forward
        if self.attention is not None:
            sasrec.CausalSelfAttention.forward = self.attention
        device = torch.device("cpu")
        try:
            start = time.perf_counter()
            for batch in batches:
                with autocast(self.precision, device):
                    loss, _ = weighted_loss(self.run, batch, device)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
                self.optimizer.step()
            return time.perf_counter() - start
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
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds; each variant's figure is its best round")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(progress=False)
    split = load_split(cfg)
    stream = TrainingStream(split.train, make_strategy("mt"), StreamConfig("packed", cfg.max_len, cfg.batch_size, 0))
    batches = [b for _, b in zip(range(WARMUP + args.steps), iter(stream))]
    results: dict = {"threads": torch.get_num_threads(), "steps": args.steps, "rounds": args.rounds, "variants": {}}
    variants = {}
    for name, (precision, attention, compiled, fused) in VARIANTS.items():
        if compiled and args.no_compile:
            continue
        variants[name] = Variant(cfg, split, precision, attention, compiled, fused)
        warm = variants[name].steps(batches[:WARMUP])  # compiles, where compiled
        results["variants"][name] = {"first_steps_seconds": warm, "round_ms": []}
    for _ in range(args.rounds):  # rounds interleave the variants, so drifts of the machine touch them alike
        for name, variant in variants.items():
            seconds = variant.steps(batches[WARMUP:])
            results["variants"][name]["round_ms"].append(seconds / args.steps * 1e3)
    for name, r in results["variants"].items():
        r["ms_per_step"] = min(r["round_ms"])
        print(f"{name:44s} {r['ms_per_step']:7.1f} ms/step (rounds {', '.join(f'{x:.1f}' for x in r['round_ms'])}; "
              f"first {WARMUP} steps {r['first_steps_seconds']:.1f} s)", flush=True)
    reference = results["variants"]["fp32"]["ms_per_step"]
    results["speedup_over_fp32"] = {n: reference / r["ms_per_step"] for n, r in results["variants"].items()}
    results["matmul_gflops"] = matmul_gflops()
    for shape, gflops in results["matmul_gflops"].items():
        print(f"matmul {shape:24s} {gflops:7.1f} GFLOP/s")
    path = write_results("cpu_options", results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
