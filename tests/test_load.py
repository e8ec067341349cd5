"""Two ``rollcall serve`` processes on one PostgreSQL take 50 concurrent clients of mixed SCIM,
OneRoster and OIDC traffic with zero errors and flat memory (``bench/load.py``).

A short run here (``.ci/run`` gives the suite its PostgreSQL); ``make soak`` runs the full
size and ``bench/README.md`` records its p99. On SQLite the test is skipped with the reason.
"""

from __future__ import annotations

import json

import pytest

from tests.benches import run_bench


@pytest.mark.postgres_only  # two processes share one database
def test_two_processes_take_fifty_clients_without_an_error():
    result = run_bench("load", "--requests", "600", "--clients", "50", timeout=280)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == 0, report["first_errors"]
    assert report["requests"] == 600 and report["clients"] == 50
    assert report["memory_flat"], (report["rss_start_mib"], report["rss_end_mib"])
    assert result.returncode == 0, result.stderr[-2000:]
