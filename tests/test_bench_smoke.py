"""The benchmarks still run (tiny sizes; their numbers are read by people, not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_search_benchmark_runs_and_prints_ratios(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.search", "--users", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "1.00x" in result.stdout and "search: deep page" in result.stdout
