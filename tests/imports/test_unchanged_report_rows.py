"""The report of a nightly full package lists every row, and its unchanged rows cost no Python
per row to store (issue 15: a full package with 1% of its users changed stored ~100,000
report rows one parameter set each, a second time when replayed).

On SQLite the rows found unchanged that follow each other in a file are stored as one INSERT
of their keys; what staff read back (the run over the admin API) is row for row what the
run reported, in order, and a trial run reports what its apply does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from server.db.session import Database
from server.domain.import_runs import RunStatus
from tests.imports.conftest import bearer
from tests.imports.packages import district, package

STUDENTS = 600
RENAMED = 6  # 1% of the students


@contextmanager
def report_rows_bound(database: Database) -> Iterator[list[int]]:
    """The INSERTs of report rows sent inside the block: how many parameter sets each."""
    bound: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO IMPORT_ROW_RESULTS"):
            bound.append(len(parameters) if executemany else 1)

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield bound
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def _renamed(how_many: int) -> dict:
    files = district(students=STUDENTS)
    for user in files["users.csv"][1 : how_many + 1]:
        user["familyName"] = "Renamed"
    return files


def _stored_rows(client, token: str, run_id: str) -> list[dict]:
    answer = client.get(f"/admin/api/imports/{run_id}?limit=100000", headers=bearer(token))
    assert answer.status_code == 200, answer.text
    return answer.json()["row_results"]


@pytest.mark.parametrize("path", ["direct", "prepared"])
def test_a_full_package_with_one_percent_changed_stores_its_unchanged_rows_in_bulk(
    tenancy, tmp_path, client, admin_token, database_url, path, request
):
    if path == "prepared":
        request.getfixturevalue("prepared_always")
    first = package(tmp_path / "first.zip", "1.1", district(students=STUDENTS))
    assert tenancy.run(first).status == RunStatus.APPLIED
    changed = package(tmp_path / "changed.zip", "1.1", _renamed(RENAMED))

    with report_rows_bound(tenancy.database) as bound:
        report = tenancy.run(changed)

    assert report.status == RunStatus.APPLIED, report.summary
    assert report.outcomes["updated"] == RENAMED
    assert report.outcomes["unchanged"] == report.row_count - RENAMED
    if database_url.startswith("sqlite"):
        # the six renamed rows split the unchanged ones into a few runs: O(runs), not O(rows)
        assert sum(bound) < report.row_count // 20, f"{sum(bound)} of {report.row_count} rows"
    stored = _stored_rows(client, admin_token, report.id)
    assert stored == list(report.rows())
    assert [row["row"] for row in stored if row["file"] == "users.csv"] == list(
        range(2, STUDENTS + 3)
    )


def test_a_trial_run_reports_row_for_row_what_its_apply_does(
    tenancy, tmp_path, client, admin_token
):
    first = package(tmp_path / "first.zip", "1.1", district(students=STUDENTS))
    assert tenancy.run(first).status == RunStatus.APPLIED
    changed = package(tmp_path / "changed.zip", "1.1", _renamed(RENAMED))

    trial = tenancy.run(changed, dry_run=True)
    applied = tenancy.run(changed)

    assert (trial.status, applied.status) == (RunStatus.VALID, RunStatus.APPLIED)
    assert trial.outcomes == applied.outcomes
    assert _stored_rows(client, admin_token, trial.id) == _stored_rows(
        client, admin_token, applied.id
    )
    again = tenancy.run(changed)  # identical now: reported without reading its rows
    assert _stored_rows(client, admin_token, again.id) == [
        {**row, "outcome": "unchanged", "code": None, "message": None, "changes": {}}
        for row in _stored_rows(client, admin_token, applied.id)
    ]


def test_the_report_rows_of_a_package_with_one_change_go_in_a_few_statements(
    tenancy, tmp_path, database_url
):
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL stores the rows of a report in batches of parameter sets")
    files = district(students=2000)  # users.csv and enrollments.csv: 2 x 2,001 rows
    assert tenancy.run(package(tmp_path / "first.zip", "1.1", files)).status == "applied"
    files["users.csv"][1]["familyName"] = "Renamed"
    changed = package(tmp_path / "changed.zip", "1.1", files)

    with report_rows_bound(tenancy.database) as bound:
        report = tenancy.run(changed)

    assert report.outcomes["updated"] == 1, report.summary
    assert report.row_count > 4000
    # a statement per run of unchanged rows (per file, and users.csv's before and after the
    # updated row), whatever the number of rows
    assert len(bound) <= 10, f"{len(bound)} INSERTs of report rows"
    assert sum(bound) < 60, f"{sum(bound)} parameter sets for {report.row_count} rows"
