"""What a run is built from: the device, the leave-one-out split of its data, and its model (chosen by name here,
in one place: sasrec, hstu, tiger, pop)."""

from __future__ import annotations

import logging
import os
from contextlib import nullcontext

import numpy as np
import torch

from genpas.data import LoadOptions, leave_one_out, load_dataset
from genpas.errors import GenpasError
from genpas.models import Popularity, SASRec, SASRecConfig
from genpas.train.config import TrainConfig, valid_device

log = logging.getLogger(__name__)

MODELS = ("sasrec", "hstu", "tiger", "pop")


def pick_device(name: str = "auto") -> torch.device:
    if not valid_device(name):
        raise GenpasError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {name!r}")
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise GenpasError(f"--device {name}: this torch sees no CUDA GPU; use --device cpu or auto")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise GenpasError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
        if device.type == "mps" and not _mps_available():
            raise GenpasError(f"--device {name}: MPS is not available here; use --device cpu or auto")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def native_cpu_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): there bf16 matrix products run about 3x faster
    than float32 ones. Asked through torch's own probes; a torch without them answers no."""
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(probe is not None and probe() for probe in probes)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'fp32' or 'bf16': what `--precision` means on `device`.

    auto is bf16 autocast on CUDA (where it is the standard) and float32 elsewhere. On a CPU with native bf16 the
    bf16 path makes a SASRec step about 1.2x faster at the same validation NDCG@10, but its test NDCG@10 on ml-100k
    came out 0.002 lower over 3 seeds (a tie, yet below the 0.060 the default is held to), so it stays one flag away
    (`--precision bf16`) rather than the default: docs/performance.md "bf16 on the CPU: quality".
    """
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "bf16":
        if device.type not in ("cpu", "cuda"):
            raise GenpasError(f"--precision bf16 runs on a CPU or a CUDA device, not {device.type}; use --precision fp32")
        if device.type == "cpu" and not native_cpu_bf16():
            log.warning("--precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX); bf16 products are "
                        "emulated and likely slower than --precision fp32")
    return precision


def autocast(precision: str, device: torch.device):
    """The training step's context: bf16 autocast (matrix products in bf16, reductions and the loss in fp32; the
    weights and the optimizer stay fp32), or nothing for fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def load_split(cfg: TrainConfig):
    options = LoadOptions(cfg.format, cfg.user_col, cfg.item_col, cfg.time_col, cfg.min_user_count, cfg.min_item_count)
    return leave_one_out(load_dataset(cfg.data, options))


def build_model(cfg: TrainConfig, split, weights=None) -> tuple[torch.nn.Module, dict]:
    """The model and what it was built from (TIGER: its semantic-id statistics). `weights`: a saved run's checkpoint
    (best.safetensors), loaded into the model, whose items it must share; TIGER then takes its semantic ids from it
    instead of computing them. A popularity model has no weights."""
    model, info = _architecture(cfg, split, weights)
    if weights is not None and cfg.model != "pop":
        from genpas.train.checkpoint import load_weights

        load_weights(weights, model, split.full.item_fingerprint())
    return model, info


def _architecture(cfg: TrainConfig, split, weights=None) -> tuple[torch.nn.Module, dict]:
    """The freshly initialised model of `cfg` (TIGER's semantic ids from `weights` where given)."""
    if cfg.model == "pop":
        counts = np.bincount(split.train.items, minlength=split.full.num_items)
        return Popularity(torch.from_numpy(counts)), {}
    if cfg.model == "sasrec":
        return SASRec(SASRecConfig(split.full.num_items, cfg.dim, cfg.layers, cfg.heads, cfg.dropout, cfg.max_len,
                                   cfg.tied)), {}
    if cfg.model == "hstu":
        from genpas.models.hstu import HSTU, HSTUConfig

        return HSTU(HSTUConfig(split.full.num_items, cfg.dim, cfg.layers, cfg.heads, cfg.attention_dim,
                               cfg.linear_dim, cfg.dropout, cfg.max_len, cfg.time_buckets, cfg.tied)), {}
    if cfg.model == "tiger":
        from genpas.models.tiger import TIGER, TIGERConfig
        from genpas.train.item_codes import semantic_ids

        if cfg.mode != "pairs":
            raise GenpasError("TIGER trains on pairs: use --mode pairs (an encoder-decoder cannot share a packed window)")
        if cfg.beam < max(cfg.ks):
            raise GenpasError(f"--beam {cfg.beam} must be at least the largest K of the metrics ({max(cfg.ks)})")
        if weights is not None:
            from genpas.train.checkpoint import tiger_codes

            (codes, vocab), info = tiger_codes(weights, split.full.num_items), {"semantic_ids": str(weights)}
        else:
            ids, stats = semantic_ids(cfg, split)
            codes, info = ids.codes, {"semantic_ids": stats}
            vocab = max(cfg.codebook_size, int(codes[:, -1].max()) + 1)
        tiger = TIGERConfig(split.full.num_items, codes.shape[1], vocab, dim=cfg.dim, layers=cfg.layers,
                            heads=cfg.heads, dropout=cfg.dropout, max_len=cfg.max_len, beam=cfg.beam,
                            encoder_input=cfg.encoder_input)
        return TIGER(tiger, codes), info
    raise GenpasError(f"unknown model {cfg.model!r}; choose one of {', '.join(MODELS)}")


def sampled_softmax(cfg: TrainConfig, split, model, device):
    """The sampled-softmax loss of `--negatives N` (None: the full softmax)."""
    from genpas.train.loss import SampledSoftmax

    if not cfg.negatives:
        return None
    if cfg.negatives < 0:
        raise GenpasError(f"--negatives must be >= 0 (0: full softmax), got {cfg.negatives}")
    if not hasattr(model, "output_embeddings"):
        raise GenpasError(f"--negatives: a sampled softmax needs an item-scoring model (sasrec, hstu), not {cfg.model}")
    num_items = split.full.num_items
    if cfg.negative_sampling == "uniform":
        proposal = torch.ones(num_items)
    elif cfg.negative_sampling == "popularity":
        proposal = torch.from_numpy(np.bincount(split.train.items, minlength=num_items) + 1.0)
    else:
        raise GenpasError(f"--negative-sampling must be uniform or popularity, got {cfg.negative_sampling!r}")
    return SampledSoftmax(proposal, cfg.negatives).to(device)
