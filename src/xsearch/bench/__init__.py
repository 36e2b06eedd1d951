"""Benchmark harness: datasets, metrics and runners for xsearch."""
