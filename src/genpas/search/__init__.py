"""Search and experiments: strategy comparisons, screening, trained search, reports."""
