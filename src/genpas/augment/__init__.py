"""Augmentation: the GenPAS pair distribution, its samplers, and the torch stream that feeds training."""

from genpas.augment.distribution import PairDistribution
from genpas.augment.packed import WindowDistribution
from genpas.augment.sampler import ClassicEpochs, EpochSampler, shard_range
from genpas.augment.strategy import PRESETS, Strategy, genpas, make_strategy, parse_bias

__all__ = [
    "PairDistribution",
    "WindowDistribution",
    "ClassicEpochs",
    "EpochSampler",
    "shard_range",
    "PRESETS",
    "Strategy",
    "genpas",
    "make_strategy",
    "parse_bias",
]
