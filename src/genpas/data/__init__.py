"""Data layer: read interaction logs, preprocess them into a SequenceStore, split them leave-one-out."""

from genpas.data.load import LoadOptions, load_dataset
from genpas.data.split import LeaveOneOut, leave_one_out
from genpas.data.store import SequenceStore
from genpas.data.synth import SynthConfig, synthesize, synthesize_store

__all__ = [
    "LoadOptions",
    "load_dataset",
    "LeaveOneOut",
    "leave_one_out",
    "SequenceStore",
    "SynthConfig",
    "synthesize",
    "synthesize_store",
]
