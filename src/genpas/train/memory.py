"""Will it fit? A lower bound on a training run's memory, checked against the device before anything is allocated.

A size typed one digit too long (`--dim 100000`, `--max-len 10000000`) would otherwise end in an allocator
traceback after minutes of data loading, or in the operating system killing the process (and, on a shared machine,
its neighbours). Before training starts, `memory_problem` counts the model's parameters on the meta device (no
memory) and adds what training cannot do without:

    parameters x 16 bytes   weights, gradients and AdamW's two moments, float32
    the larger of           one batch's logits: batch x catalogue x 4 bytes, twice (scores and their gradient; at
                            least one target per row, N + 1 columns with --negatives), and
                            one evaluation batch's scores: eval_batch_size x catalogue x 4 bytes

Every term is a lower bound (activations are left out, and a packed window counts one target), so a run it refuses
cannot fit; a run it lets through may still need more, and the CLI turns the allocator's out-of-memory error into
one line as well. Evaluating a saved run is not checked (it needs less than its training did). TIGER (semantic ids
built before its model, codes scored instead of items) is bounded by the allocator alone.

Threads and data-loader workers beyond the machine's cores: a flag asking for them is refused by the CLI; a value
read from a saved or shared config is lowered to the cores with a warning (`within_cores`), so a run trained on a
larger machine still resumes on a smaller one.
"""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)
GIB = 1 << 30


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_bytes(device: torch.device) -> int | None:
    """Free memory of `device` (None when it cannot be told)."""
    if device.type == "cuda":  # free on the device, plus what this process's allocator holds for reuse (an earlier
        free, _ = torch.cuda.mem_get_info(device)  # run's memory, kept cached: not free to others, free to us)
        return int(free) + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
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


def lower_bound_bytes(cfg, num_items: int, parameters: int, rows: int | None = None,
                      users: int | None = None) -> dict:
    """The lower-bound terms of the module docstring, in bytes (training logits and evaluation scores never coexist:
    the total counts the larger). `rows` and `users` (when known) cap a batch on small data: the training rows of
    an epoch and the users evaluated."""
    columns = cfg.negatives + 1 if cfg.negatives else num_items
    batch = min(cfg.batch_size, rows) if rows is not None else cfg.batch_size
    evaluated = min(cfg.eval_batch_size, users) if users is not None else cfg.eval_batch_size
    return {"parameters": 16 * parameters, "logits": 2 * 4 * batch * columns, "evaluation": 4 * evaluated * num_items}


def _least_rows(cfg, split) -> int:
    """Fewest training rows an epoch can have: one per user with a target, or the pair budget when smaller."""
    rows = int((split.train.lengths >= 2).sum())
    for budget in (cfg.num_pairs, cfg.budget_pairs):
        if budget:
            rows = min(rows, budget)
    return max(rows, 1)


def total(need: dict) -> int:
    return need["parameters"] + max(need["logits"], need["evaluation"])


def memory_problem(cfg, split, device: torch.device) -> str | None:
    """Why training `cfg` cannot fit on `device`, or None (also when the free memory cannot be told)."""
    if cfg.model not in ("sasrec", "hstu"):
        return None
    free = available_bytes(device)
    if free is None:
        return None
    need = lower_bound_bytes(cfg, split.full.num_items, parameter_count(cfg, split), _least_rows(cfg, split),
                             len(split.eval_users))
    if total(need) <= free:
        return None
    parts = ", ".join(f"{name} {size / GIB:.1f}" for name, size in need.items())
    return (f"this run needs at least {total(need) / GIB:.1f} GiB ({parts}) and {device} has {free / GIB:.1f} GiB "
            "free: lower --dim, --layers, --max-len or --batch-size (--negatives N shrinks the logits of a large "
            "catalogue)")


def within_cores(value: int | None, key: str) -> int | None:
    """A config's thread or worker count, lowered to the machine's cores (with a warning) where it asks for more."""
    limit = cores()
    if value is None or value <= limit:
        return value
    log.warning("%s: %d in the run's config exceeds this machine's %d cores; using %d", key, value, limit, limit)
    return limit
