"""Where a training step goes on this machine (SASRec by default; any model through --config): batch building,
forward, backward, optimizer, validation, and the operators by self CPU time (torch.profiler). Prints the figures and
writes its JSON (below).

    python bench/profile_step.py [--threads N] [--steps N] [--precision auto|fp32|bf16] [--config YAML]

The precision defaults to the config's (e.g. bf16 for configs/tiger-ml1m.yaml).

Writes bench/results/profile_step_<precision>.json (the precision as resolved on this machine); with --config (e.g.
configs/sasrec-ml1m.yaml) the training options come from that file and the name gains its stem:
profile_step_<precision>_<stem>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

from genpas.augment import make_strategy
from genpas.augment.batches import StreamConfig, TrainingStream
from genpas.train.build import autocast, build_model, load_split, resolve_precision
from genpas.train.config import TrainConfig
from genpas.train.evaluate import evaluate
from genpas.train.loss import weighted_loss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--precision", default=None, choices=("auto", "fp32", "bf16"),
                        help="default: the config's (auto unless --config sets it)")
    parser.add_argument("--config", type=Path, default=None, help="training options (default: the defaults, ml-100k)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # the model's defaults under the config's keys, as `genpas train --config` reads it
    cfg = TrainConfig.for_model(TrainConfig.yaml_values(args.config), str(args.config)) if args.config else TrainConfig()
    precision = resolve_precision(args.precision or cfg.precision, torch.device("cpu"))
    split = load_split(cfg)
    model, _ = build_model(cfg, split)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    stream = TrainingStream(split.train, make_strategy("mt"),
                            StreamConfig(cfg.mode, cfg.max_len, cfg.batch_size, 0,
                                         times=getattr(model, "needs_times", False)))
    batches = iter(stream)

    def step(times=None):
        marks = [time.perf_counter()]
        with record_function("batch_building"):
            batch = next(batches)
        marks.append(time.perf_counter())
        with record_function("forward_loss"), autocast(precision, torch.device("cpu")):
            loss, _ = weighted_loss(model, batch, "cpu")
        marks.append(time.perf_counter())
        with record_function("backward"):
            optimizer.zero_grad()
            loss.backward()
        marks.append(time.perf_counter())
        with record_function("optimizer"):
            optimizer.step()
        marks.append(time.perf_counter())
        if times is not None:
            for i, name in enumerate(("batch", "forward", "backward", "optimizer")):
                times[name] += (marks[i + 1] - marks[i]) * 1e3 / args.steps

    for _ in range(3):  # warm-up
        step()
    per_step = dict.fromkeys(("batch", "forward", "backward", "optimizer"), 0.0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step(per_step)
        start = time.perf_counter()
        with record_function("validation"):
            evaluate(model, split, "valid", cfg.max_len, exclude_history=cfg.exclude_history)
        validation = time.perf_counter() - start
    print("per step, ms: " + ", ".join(f"{k} {v:.1f}" for k, v in per_step.items())
          + f"; total {sum(per_step.values()):.1f}; one validation pass {validation:.2f} s")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))
    ops = {e.key: e.self_cpu_time_total / 1e3 for e in prof.key_averages()}
    result = {"config": str(args.config or "defaults"), "data": cfg.data, "max_len": cfg.max_len,
              "batch_size": cfg.batch_size, "threads": args.threads, "precision": precision, "steps": args.steps, "ms_per_step": per_step, "validation_s": validation,
              "self_cpu_ms_by_op": dict(sorted(ops.items(), key=lambda kv: -kv[1])[:20])}
    stem = f"profile_step_{precision}" + (f"_{args.config.stem}" if args.config else "")
    out = Path(__file__).parent / "results" / f"{stem}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
