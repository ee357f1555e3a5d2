"""Engines: preprocessing a log too large for one process, on an engine the user already runs.

`prepare(source, out, engine=...)` writes the one store format that `genpas.data` opens (memory-mapped); nothing
downstream knows which engine wrote a store. The engines follow the in-process preprocessing rule for rule
(genpas.data.preprocess), and tests hold them to identical stores.

    polars   lazy scans and the streaming engine: out of core on one machine (the default)
    spark    PySpark DataFrames: local[*] or any cluster (the `spark` extra)
"""

from genpas.engines.prepare import ENGINES, PrepareOptions, prepare

__all__ = ["ENGINES", "PrepareOptions", "prepare"]
