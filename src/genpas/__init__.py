"""genpas: principled training data for generative recommenders.

The package is laid out in the order data flows through it:

    data      -> readers, preprocessing, the SequenceStore and the leave-one-out split
    augment   -> the GenPAS pair distribution, its samplers and torch datasets
    analysis  -> closed-form properties of a pair distribution (no training)
    models    -> SASRec and baselines (pure torch)
    train     -> trainer, evaluation metrics, checkpoints
    cli       -> thin typer commands over this API
"""

from genpas.errors import GenpasError

__version__ = "0.1.0"
__all__ = ["GenpasError", "__version__"]
