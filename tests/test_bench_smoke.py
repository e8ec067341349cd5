"""The benchmarks still run (tiny sizes; their numbers are read by people, not asserted)."""

from __future__ import annotations

from tests.benches import figures_of, run_bench


def test_search_benchmark_runs_and_prints_ratios(tmp_path):
    result = run_bench("search", "--users", "300", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1.00x" in result.stdout and "search: deep page" in result.stdout


def test_scim_benchmark_runs_both_servers_and_prints_one_json_line_per_figure():
    result = run_bench("scim", "--sizes", "40", "--requests", "8", timeout=180)
    figures = figures_of(result)
    lines = list(figures.values())
    assert "userName eq @40" in figures and "externalId eq @40" in figures, sorted(figures)
    lookup = figures["externalId eq @40"]
    assert lookup["baseline_name"] == "scim2-server" and lookup["ratio"] > 0
    # every request answered as expected, on both servers
    assert all(line["details"].get("errors", 0) == 0 for line in lines), lines
    assert all(line["details"].get("reference_errors", 0) == 0 for line in lines), lines


def test_oneroster_benchmark_compares_two_sizes_for_every_client():
    result = run_bench("oneroster", "--users", "1000,2000", "--repeats", "1", timeout=240)
    figures = figures_of(result)
    for client in ("district-wide", "all 20 schools", "one school"):
        for page in ("first page", "deep page"):
            flat = figures[f"users {page} @2k, {client}"]
            assert flat["baseline_name"] == "first page @1k" and flat["ratio"] > 0, flat
    deep = figures["users deep page (offset 1,900), district-wide @2k"]
    assert deep["details"]["visible"] == 2000 and deep["details"]["counting_ms"] > 0, deep
