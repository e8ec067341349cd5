"""The import benchmark runs end to end (tiny size; the real run is `make bench`)."""

from __future__ import annotations

from bench.imports import main


def test_the_import_benchmark_prints_its_ratios(capsys):
    result = main(["--users", "40", "--classes-per-student", "2"])
    out = capsys.readouterr().out
    assert "executemany baseline" in out and "import/baseline: speed" in out
    assert "first import/indexed floor: speed" in out and result["indexed_floor"]["rows"] > 0
    # each phase's CPU seconds are printed: the figure to compare on a shared machine
    assert "CPU s" in out.splitlines()[1], out
    assert result["import_full"]["status"] == "applied"
    assert result["speed_ratio"] > 0 and result["memory_ratio"] > 0
    phases = result["phases"]
    # the identical package is skipped; after one edit every row is read (issue 15)
    assert "identical to that of run" in phases["unchanged re-import"]["summary"]
    edited = phases["unchanged re-import after one edit"]["summary"]
    assert "identical" not in edited and "unchanged" in edited
