"""Augmentation strategies: the GenPAS family (alpha, beta, gamma) and the exact classic presets.

A strategy says how training pairs (u, k, j) are drawn from users' sequences (spec sections 2-4):

    p(u)       proportional to the user weight        GenPAS: (n_u - 1)^alpha;   exact SW: n_u (n_u - 1) / 2
    p(k | u)   proportional to (k - 1)^beta           for k = 2 .. n_u
    p(j | k)   proportional to j^gamma                for j = 1 .. k - 1

Limits: beta = +inf puts all mass on k = n_u (beta = -inf on k = 2); gamma = -inf on j = 1 (the full prefix),
gamma = +inf on j = k - 1 (a one-item input).

    preset  what it is                                        alpha  beta   gamma   user weight
    lt      Last-Target: full prefix -> last item, one per user  0    +inf   -inf    1
    mt      Multi-Target: every prefix -> the next item          1     0     -inf    n - 1
    sw      Slide-Window: every contiguous window -> next item   -     1      0      n (n - 1) / 2   (exact)

LT and MT are exactly GenPAS(0, inf, -inf) and GenPAS(1, 0, -inf). Exact SW is uniform over all windows, which weighs
users by their number of windows n(n-1)/2; GenPAS(2, 1, 0) weighs them by (n-1)^2 instead, so each of its pair
probabilities differs from exact SW by a factor proportional to n/(n-1). Both are offered, under different names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genpas.errors import GenpasError

INF = math.inf
MAX_FINITE_EXPONENT = 40.0  # beyond this, powers of long sequence lengths overflow float64; use +-inf instead
STRATEGIES = ("lt", "mt", "sw", "genpas")
BIASES = ("alpha", "beta", "gamma")
NO_BIASES = dict.fromkeys(BIASES)  # a config's biases for a preset: a run turned into one drops the ones it had


class StrategyError(GenpasError):
    """make_strategy's refusal, said so that a caller can name each option where it was set (train/strategy_check.py).
    `kind`: unknown (no such strategy), value (a bias out of range), preset (biases given to a preset) or missing
    (genpas without all three); `option`: the one at fault; `reason`: why, naming no option; `biases`: the biases
    given to the preset, or the ones genpas lacks."""

    def __init__(self, message: str, kind: str, option: str, reason: str, biases=()):
        super().__init__(message)
        self.kind, self.option, self.reason, self.biases = kind, option, " ".join(reason.split()), tuple(biases)


@dataclass(frozen=True)
class Strategy:
    """One point of the family. `user_weight` is 'power' ((n-1)^alpha) or 'windows' (n(n-1)/2, exact SW)."""

    name: str
    alpha: float
    beta: float
    gamma: float
    user_weight: str = "power"

    @property
    def label(self) -> str:
        if self.name != "genpas":
            return self.name.upper()
        return f"GenPAS({bias_text(self.alpha)}, {bias_text(self.beta)}, {bias_text(self.gamma)})"

    def as_dict(self) -> dict:
        return {"strategy": self.name, "alpha": self.alpha, "beta": self.beta, "gamma": self.gamma, "user_weight": self.user_weight}

    def as_json(self) -> dict:
        """as_dict with its label, and infinite biases spelled "inf" / "-inf" (JSON has no infinity)."""
        return {k: spelled(v) for k, v in self.as_dict().items()} | {"label": self.label}


def spelled(x):
    """`x` as JSON and YAML can hold it: an infinite float as "inf" or "-inf" (JSON has no infinity), else as is."""
    return ("inf" if x > 0 else "-inf") if isinstance(x, float) and math.isinf(x) else x


def bias_text(x: float) -> str:
    """A bias as labels and names show it: 0.5, 2, inf, -inf."""
    return spelled(float(x)) if math.isinf(x) else f"{x:g}"


def _check(name: str, value: float, allow_pos_inf: bool = True, allow_neg_inf: bool = True) -> float:
    def bad(reason: str, sep: str = " ") -> StrategyError:
        return StrategyError(f"{name}{sep}{reason}", "value", name, reason)

    if isinstance(value, bool) or not isinstance(value, (int, float)):  # a YAML true or [1] is no exponent
        raise bad(f"must be a number or +-inf, got {value!r}")
    value = float(value)
    if math.isnan(value):
        raise bad("is NaN; give a number or +-inf")
    if math.isinf(value):
        if (value > 0 and not allow_pos_inf) or (value < 0 and not allow_neg_inf):
            raise bad(f"{bias_text(value)} is not allowed (it has no limit in the GenPAS family)", " = ")
        return value
    if abs(value) > MAX_FINITE_EXPONENT:
        raise bad(f"{value:g} is outside [-{MAX_FINITE_EXPONENT:g}, {MAX_FINITE_EXPONENT:g}]; use "
                  f"{'inf' if value > 0 else '-inf'} for the limit", " = ")
    return value


def genpas(alpha: float, beta: float, gamma: float) -> Strategy:
    """The GenPAS sampler with biases (alpha, beta, gamma); alpha must be finite (alpha = +-inf has no limit)."""
    return Strategy(
        "genpas",
        _check("alpha", alpha, allow_pos_inf=False, allow_neg_inf=False),
        _check("beta", beta),
        _check("gamma", gamma),
    )


PRESETS = {
    "lt": Strategy("lt", 0.0, INF, -INF),
    "mt": Strategy("mt", 1.0, 0.0, -INF),
    "sw": Strategy("sw", 2.0, 1.0, 0.0, user_weight="windows"),
}


def make_strategy(name: str, alpha: float | None = None, beta: float | None = None, gamma: float | None = None) -> Strategy:
    """A preset by name ('lt', 'mt', 'sw') or 'genpas' with all three biases; a StrategyError otherwise."""
    given = {n: v for n, v in zip(BIASES, (alpha, beta, gamma)) if v is not None}
    if name.lower() in PRESETS:
        if given:
            raise StrategyError(f"--strategy {name.lower()} is a preset; --alpha/--beta/--gamma go with --strategy "
                                "genpas", "preset", "strategy", "is a preset", given)
        return PRESETS[name.lower()]
    if name.lower() == "genpas":
        missing = [n for n in BIASES if n not in given]
        if missing:
            raise StrategyError(f"--strategy genpas needs --{' --'.join(missing)}", "missing", "strategy",
                                "needs alpha, beta and gamma", missing)
        return genpas(alpha, beta, gamma)
    raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}", "unknown", "strategy",
                        f"must be one of {', '.join(STRATEGIES)}, got {name!r}")


def parse_bias(text: str | float | None) -> float | None:
    """'inf', '+inf', '-inf', 'Infinity' or a number (CLI values)."""
    if text is None or isinstance(text, (int, float)):
        return text
    cleaned = text.strip().lower()
    if cleaned in ("inf", "+inf", "infinity", "+infinity"):
        return INF
    if cleaned in ("-inf", "-infinity"):
        return -INF
    try:
        return float(cleaned)
    except ValueError:
        raise GenpasError(f"cannot read {text!r} as a number (use e.g. 0.5, inf or -inf)") from None
