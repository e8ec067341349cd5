"""Running a benchmark from a test: ``python -m bench.MODULE`` in the checkout, its figures read
back from the JSON lines it prints (``bench/figures.py``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench(module: str, *args: str, timeout: int) -> subprocess.CompletedProcess[str]:
    """``python -m bench.MODULE ARGS`` from the checkout, its output captured as text."""
    command = [sys.executable, "-m", f"bench.{module}", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def figures_of(result: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    """The JSON line of each figure a benchmark printed, by figure name."""
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line["figure"]: line for line in lines}
