"""The evidence behind the CPU training defaults: milliseconds per SASRec-MT packed step (ml-100k, default model and
batch) under each option the speed issue names, measured in one process on the same batches.

    python bench/cpu_options.py [--threads N] [--steps 40] [--rounds 3] [--no-compile]
    python bench/cpu_options.py --config configs/sasrec-ml1m.yaml --variants fp32,bf16 --steps 5   # ML-1M, length 200
    python bench/cpu_options.py --config configs/tiger-ml1m.yaml --variants fp32,bf16,bf16-fused --no-compile  # TIGER pairs

Variants: exact float32 (the reference), float32 with dropout masks from an integer hash (a candidate), bf16 autocast with the fused attention kernel, bf16 autocast with the explicit
attention the model uses under CPU autocast (what `--precision bf16` runs), both again under
`torch.compile`, fused AdamW instead of the default implementation, and bf16 matrix-product throughput alone. Every step
is a full training step (forward, loss, backward, gradient clipping, AdamW). The variants are timed in interleaved
rounds and each reports its best round, so a drift of the machine's speed does not favour one. Compile times are
reported apart (they are paid once per run). Writes bench/results/cpu_options.json; with `--config FILE` (another
data set, length or model: e.g. ML-1M at length 200, or HSTU) bench/results/cpu_options_<FILE's stem>.json.
`--variants` picks some of: {ids}.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_results  # noqa: E402

from genpas.augment import make_strategy  # noqa: E402
from genpas.augment.batches import StreamConfig, TrainingStream  # noqa: E402
from genpas.models import sasrec  # noqa: E402
from genpas.train.build import autocast, build_model, load_split  # noqa: E402
from genpas.train.config import TrainConfig  # noqa: E402
from genpas.train.loss import weighted_loss  # noqa: E402

WARMUP = 5


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


@dataclass(frozen=True)
class Setup:
    precision: str = "fp32"
    fused_kernel: bool = False  # keep the fused attention kernel under CPU autocast
    hashed_dropout: bool = False
    compiled: bool = False
    fused_adamw: bool = False


VARIANTS = {  # id -> (name in the results, setup)
    "fp32": ("fp32", Setup()),
    "bf16-fused": ("bf16, fused attention kernel", Setup("bf16", fused_kernel=True)),
    "bf16": ("bf16, explicit attention (--precision bf16)", Setup("bf16")),
    "fp32-fused-adamw": ("fp32, fused AdamW", Setup(fused_adamw=True)),
    "bf16-fused-adamw": ("bf16, fused AdamW", Setup("bf16", fused_adamw=True)),
    "fp32-hashed-dropout": ("fp32, hashed dropout masks", Setup(hashed_dropout=True)),
    "fp32-compile": ("fp32, torch.compile", Setup(compiled=True)),
    "bf16-compile": ("bf16, torch.compile", Setup("bf16", compiled=True)),
}
__doc__ = __doc__.format(ids=", ".join(VARIANTS))


class Variant:
    """One training setup, built and warmed up once, timed in rounds."""

    def __init__(self, cfg, split, setup: Setup):
        torch.manual_seed(0)
        self.model, _ = build_model(cfg, split)
        if setup.hashed_dropout:
            hashed_dropout(self.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                           fused=True if setup.fused_adamw else None)
        self.run = torch.compile(self.model) if setup.compiled else self.model
        self.setup, self.clip = setup, cfg.grad_clip

    def steps(self, batches) -> float:
        """Seconds for one training step on each batch."""
        detect = sasrec.cpu_autocast
        if self.setup.fused_kernel:  # the model then sees no CPU autocast and keeps the fused kernel
            sasrec.cpu_autocast = lambda: False  # read there by SASRec, and by TIGER as sasrec.cpu_autocast
        device = torch.device("cpu")
        try:
            start = time.perf_counter()
            for batch in batches:
                with autocast(self.setup.precision, device):
                    loss, _ = weighted_loss(self.run, batch, device)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
                self.optimizer.step()
            return time.perf_counter() - start
        finally:
            sasrec.cpu_autocast = detect


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
    parser.add_argument("--name", default=None, help="results file bench/results/NAME.json (default: cpu_options, "
                                                     "with the config's stem when --config is given)")
    parser.add_argument("--config", type=Path, default=None, help="training options (YAML) instead of the ml-100k "
                        "defaults, e.g. configs/sasrec-ml1m.yaml")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated ids (default: all)")
    args = parser.parse_args()
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown or "fp32" not in chosen:
        parser.error(f"--variants: unknown {unknown[0]!r}" if unknown else "--variants must include fp32 (the "
                     "reference)")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig.for_model(TrainConfig.yaml_values(args.config), str(args.config)) if args.config else TrainConfig()
    split = load_split(cfg)
    model_times = cfg.model == "hstu"  # HSTU reads the event times
    stream = TrainingStream(split.train, make_strategy("mt"),  # the config's mode: TIGER trains on pairs
                            StreamConfig(cfg.mode, cfg.max_len, cfg.batch_size, 0, times=model_times))
    batches = [b for _, b in zip(range(WARMUP + args.steps), iter(stream))]
    results: dict = {"threads": torch.get_num_threads(), "steps": args.steps, "rounds": args.rounds,
                     "data": cfg.data, "model": cfg.model, "max_len": cfg.max_len, "batch_size": cfg.batch_size,
                     "config": str(args.config) if args.config else None, "variants": {}}
    variants = {}
    for key in chosen:
        name, setup = VARIANTS[key]
        if setup.compiled and args.no_compile:
            continue
        variants[name] = Variant(cfg, split, setup)
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
    path = write_results(args.name or "cpu_options" + (f"_{args.config.stem}" if args.config else ""), results)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
