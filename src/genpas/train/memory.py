"""Will it fit? A lower bound on a training run's memory, checked against the device before anything is allocated.

A size typed one digit too long (`--dim 100000`, `--max-len 10000000`) would otherwise end in an allocator
traceback after minutes of data loading, or in the operating system killing the process (and, on a shared machine,
its neighbours). Before the model is built, `check_fits` counts its parameters on the meta device (no memory) and
adds what one step cannot do without:

    parameters x 16 bytes   weights, gradients and AdamW's two moments, float32
    logits of one batch     batch x max_len x catalogue x 4 bytes (full softmax; N + 1 columns with --negatives),
                            twice: the scores and their gradient
    one evaluation batch    eval_batch_size x catalogue x 4 bytes

Every term is a lower bound (activations of the layers are left out), so a run it refuses cannot fit; a run it
lets through may still need more, and the CLI turns the allocator's out-of-memory error into one line as well.
Threads and data-loader workers are bounded by the machine's cores. TIGER (semantic ids built before its model, codes
scored instead of items) is bounded by the allocator alone.
"""

from __future__ import annotations

import os

import torch

from genpas.errors import GenpasError

GIB = 1 << 30


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_bytes(device: torch.device) -> int | None:
    """Free memory of `device` (None when it cannot be told)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as fh:  # MemAvailable: what can be allocated without swapping, cache included
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def parameter_count(cfg, split) -> int:
    """Parameters of the SASRec or HSTU model `cfg` builds, counted on the meta device."""
    from genpas.train.build import build_model

    with torch.device("meta"):
        model, _ = build_model(cfg, split)
    return sum(p.numel() for p in model.parameters())


def lower_bound_bytes(cfg, num_items: int, parameters: int) -> dict:
    """The three lower-bound terms of the module docstring, in bytes."""
    columns = cfg.negatives + 1 if cfg.negatives else num_items
    rows = cfg.batch_size * (cfg.max_len if cfg.mode == "packed" else 1)
    return {"parameters": 16 * parameters, "logits": 2 * 4 * rows * columns,
            "evaluation": 4 * cfg.eval_batch_size * num_items}


def check_fits(cfg, split, device: torch.device) -> None:
    """GenpasError when the run cannot fit on `device`, or asks for more threads or workers than there are cores."""
    limit = cores()
    for name, flag in (("threads", "--threads"), ("num_workers", "--workers")):
        value = getattr(cfg, name)
        if value and value > limit:
            raise GenpasError(f"{flag} {value} exceeds this machine's {limit} cores; give at most {limit}")
    if cfg.model not in ("sasrec", "hstu"):
        return
    free = available_bytes(device)
    if free is None:
        return
    need = lower_bound_bytes(cfg, split.full.num_items, parameter_count(cfg, split))
    if sum(need.values()) > free:
        parts = ", ".join(f"{name} {size / GIB:.1f}" for name, size in need.items())
        raise GenpasError(f"this run needs at least {sum(need.values()) / GIB:.1f} GiB ({parts}) and {device} has "
                          f"{free / GIB:.1f} GiB free: lower --dim, --layers, --max-len or --batch-size (--negatives N "
                          "shrinks the logits of a large catalogue)")
