"""Checkpoints: atomic writes, and loads that cannot execute code.

- `best.safetensors`: the best model's weights (safetensors: tensors only).
- `last.pt`: everything needed to resume (model, optimizer, scheduler, RNG state, trainer state), written with
  torch.save and read back with `torch.load(..., weights_only=True)`, which refuses arbitrary objects.
Every write goes to a temporary name in the same directory and is renamed into place, so a crash mid-write never
leaves a truncated file behind and never destroys the previous checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from genpas.atomic import atomic_path
from genpas.errors import GenpasError


def _atomic(path: Path, write) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


ITEMS_KEY = "item_ids_sha256"  # metadata of best.safetensors: the catalogue the weights' item codes index


ARCH_KEY = "architecture"  # metadata of best.safetensors: the model class and the options that shape its outputs
NOT_ARCHITECTURE = frozenset({"dropout", "attn_dropout", "beam"})  # training-only, or widened at serving time


def architecture(model: torch.nn.Module) -> dict | None:
    """The model's class and its config's options, less those that do not change what trained weights compute."""
    cfg = getattr(model, "cfg", None)
    if cfg is None or not dataclasses.is_dataclass(cfg):
        return None
    return {"model": type(model).__name__} | {k: v for k, v in sorted(dataclasses.asdict(cfg).items())
                                              if k not in NOT_ARCHITECTURE}


def save_weights(path: Path, model: torch.nn.Module, items: str | None = None) -> None:
    """The model's weights; `items`: the fingerprint of the item ids in code order (SequenceStore.item_fingerprint).
    The metadata records both, and the architecture, so that a load can tell weights of another model."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    arch = architecture(model)
    metadata = {**({ITEMS_KEY: items} if items else {}), **({ARCH_KEY: json.dumps(arch)} if arch else {})}
    _atomic(path, lambda tmp: save_file(state, str(tmp), metadata=metadata or None))


def load_weights(path: Path, model: torch.nn.Module, items: str | None = None) -> None:
    """Load weights into `model`. With `items` (the fingerprint of the data at hand), weights trained on another
    catalogue or item order are refused: their item codes would name other items. Files written before the
    fingerprint existed are not checked."""
    if not Path(path).exists():
        raise GenpasError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
        saved = metadata.get(ITEMS_KEY)
        trained = json.loads(metadata[ARCH_KEY]) if ARCH_KEY in metadata else None
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        raise GenpasError(f"{path}: unreadable checkpoint ({exc})") from None
    if items and saved and saved != items:
        raise GenpasError(f"{path}: the run's data has changed since it was trained (its items, or their order of "
                          f"first appearance, differ), so the weights' item codes would name other items; retrain on "
                          f"this data or restore the data the run was trained on")
    built = architecture(model)
    if isinstance(trained, dict) and built is not None and trained != built:  # files before the record: by shapes
        key = next(k for k in ["model", *sorted(set(trained) | set(built))] if trained.get(k) != built.get(k))
        raise GenpasError(f"{path}: trained as {key} = {trained.get(key)!r}, but the run's config.yaml builds "
                          f"{key} = {built.get(key)!r} (was it edited?); restore the config the run was trained with")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing or extra tensors, other shapes: not this model's weights
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
        raise GenpasError(f"{path}: the weights do not fit the model of the run's config.yaml (was it edited?): "
                          f"{first}") from None


def tiger_codes(path: Path, num_items: int):
    """The semantic ids a TIGER checkpoint was trained with ([num_items, C] codes, and V codes per level), read from
    its own tensors, so that serving needs neither the item embeddings nor the id cache it was built from."""
    if not Path(path).exists():
        raise GenpasError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as fh:
            tokens, embeddings = fh.get_tensor("item_tokens"), fh.get_slice("tok_emb.weight").get_shape()
    except Exception as exc:  # a damaged file, or not a TIGER checkpoint
        raise GenpasError(f"{path}: unreadable TIGER checkpoint ({exc})") from None
    length = tokens.shape[1]
    if tokens.shape[0] != num_items + 1 or (embeddings[0] - 1) % length:
        raise GenpasError(f"{path}: the weights do not fit the run's data ({tokens.shape[0] - 1} items in the "
                          f"checkpoint, {num_items} in the data): has the data changed since training?")
    vocab = (embeddings[0] - 1) // length
    return (tokens[1:] - 1 - torch.arange(length) * vocab).numpy(), vocab


def save_state(path: Path, state: dict) -> None:
    _atomic(path, lambda tmp: torch.save(state, tmp))


STATE_KEYS = {"model": dict, "optimizer": dict, "scheduler": dict, "rng": list, "trainer": dict}


def load_state(path: Path) -> dict:
    """The training state of last.pt: a mapping with at least STATE_KEYS, of those types (else one GenpasError)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), "empty or cut short")
        raise GenpasError(f"{path}: unreadable training state ({reason}); delete it to train from scratch") from None
    if not isinstance(state, dict) or any(not isinstance(state.get(k), t) for k, t in STATE_KEYS.items()):
        raise GenpasError(f"{path}: not a training state (it needs {', '.join(STATE_KEYS)}); delete it to train "
                          "from scratch")
    return state


def restore_state(path: Path, saved: dict, model, optimizer, scheduler, rank: int, device: torch.device) -> None:
    """Put the model, optimizer, scheduler and random generators back as `saved` (load_state of `path`) holds them."""
    try:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"][rank] if rank < len(saved["rng"]) else saved["rng"][0])
        if device.type == "cuda" and "cuda_rng" in saved:
            torch.cuda.set_rng_state(saved["cuda_rng"], device)
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise GenpasError(f"{path}: does not fit this run's model or optimizer ({str(exc).splitlines()[0]}); "
                          "delete it to train from scratch") from None
