"""A training config's strategy and its biases, checked by make_strategy (augment/strategy.py, where their rules live)
before any work starts, each option named where its value came from: by its flag, by the config file and key that set
it, or as the default (TrainConfig._bad, _ref)."""

from __future__ import annotations

from genpas.augment.strategy import BIASES, StrategyError, make_strategy
from genpas.errors import OptionError


def strategy_error(cfg, clashes: bool) -> OptionError | None:
    """The error of `cfg`'s strategy and biases, or None. `clashes`: the error of options that do not go together (a
    preset with biases, genpas without all three: TrainConfig.consistency), else of one option's value (an unknown
    strategy, a bias out of genpas's range: TrainConfig.validate)."""
    try:
        make_strategy(cfg.strategy, cfg.alpha, cfg.beta, cfg.gamma)
    except StrategyError as exc:
        if (exc.kind in ("preset", "missing")) != clashes:
            return None
        if exc.kind == "missing":  # the strategy was set (the default is a preset): its biases named as it was
            by_flag = cfg._by_flag("strategy")
            every, missing = [_named(cfg, n, by_flag) for n in BIASES], [_named(cfg, n, by_flag) for n in exc.biases]
            unset = "none is set" if len(missing) == 3 else \
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
            return cfg._bad("strategy", f"{cfg.strategy} needs {every[0]}, {every[1]} and {every[2]}; {unset}")
        if exc.kind == "preset":
            if not cfg._given("strategy"):  # the preset is the default: the bias the user set is at fault
                bias = exc.biases[0]
                return cfg._bad(bias, f"applies to {_named(cfg, 'strategy', cfg._by_flag(bias))} genpas only, got "
                                      f"{cfg._ref('strategy', bias)}, a preset")
            given = ", ".join(cfg._ref(n, "strategy") for n in exc.biases)
            return cfg._bad("strategy", f"{cfg.strategy} is a preset: drop {given}, or choose "
                                        f"{_named(cfg, 'strategy', cfg._by_flag('strategy'))} genpas")
        return cfg._bad(exc.option, exc.reason)
    return None


def _named(cfg, name: str, by_flag: bool) -> str:
    return cfg.flag(name) if by_flag else name
