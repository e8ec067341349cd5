"""``python -m bench`` (``make bench``): run every benchmark with its default size."""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = ["bench.imports", "bench.search"]

if __name__ == "__main__":
    for name in BENCHMARKS:
        print(f"== {name}")
        sys.argv = [name]
        runpy.run_module(name, run_name="__main__")
