"""Benchmarks (``python -m spex.bench accuracy``); they read data from ``$SPEX_DATA``."""
