"""A delta's write phase pays each batch's fixed cost per rows it applies, not per rows it
walks (issue 15: the 1% delta at 100,000 users walked 200 batches of 500 users.csv rows, five
of them changed in each, every batch with its own reads, flush, savepoint and audit insert)."""

from __future__ import annotations

import copy

from server.domain.import_runs import RunStatus
from server.imports import batches
from tests.imports.packages import district, package
from tests.imports.test_identical_packages import _another_tenancy


def _renamed(files: dict, every: int) -> dict:
    """``files`` with every ``every``-th student's family name changed."""
    files = copy.deepcopy(files)
    for number, row in enumerate(files["users.csv"]):
        if row.get("role") == "student" and number % every == 0:
            row["familyName"] = f"Renamed{number}"
    return files


def test_a_delta_applies_three_changed_students_in_one_batch_among_1500(
    tenancy, tmp_path, monkeypatch
):
    """Three changed students among 300 or among 1,500 (then one in each of three batches of
    500 rows walked, each with its savepoint, reads and audit insert): one batch of users.csv
    applies them either way."""
    handled: list[tuple[str, int, int]] = []
    handle = batches.handle_batch

    def noting(ctx, step, batch):
        if step.file == "users.csv":
            applied = sum(type(item) is not batches.Sighted for item in batch)
            handled.append((step.file, len(batch), applied))
        return handle(ctx, step, batch)

    for students, every in ((300, 100), (1500, 500)):
        tenant = _another_tenancy(tenancy, f"Walked {students}")
        files = district("1.1", students=students)
        first = package(tmp_path / f"first{students}.zip", "1.1", files)
        assert tenant.run(first).status == RunStatus.APPLIED
        delta = package(tmp_path / f"delta{students}.zip", "1.1", _renamed(files, every))
        handled.clear()
        with monkeypatch.context() as patched:
            patched.setattr(batches, "handle_batch", noting)
            report = tenant.run(delta)
        assert report.status == RunStatus.APPLIED and report.outcomes["updated"] == 3
        assert handled == [("users.csv", students + 1, 3)], handled
