"""Analysis without training: what a strategy does to the training distribution (spec section 6)."""

from genpas.analysis.report import analyze
from genpas.analysis.target import SMOOTHING, TargetAnalyzer, eval_distribution, kl_divergence

__all__ = ["analyze", "SMOOTHING", "TargetAnalyzer", "eval_distribution", "kl_divergence"]
