"""Benchmarks: each runs with one command and prints a ratio against a same-run baseline."""
