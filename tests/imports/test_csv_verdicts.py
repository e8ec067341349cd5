"""Row verdicts of the OneRoster CSV 1.2.1 binding that Rollcall once got silently wrong."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.db import Enrollment
from tests.imports.packages import district, package


def rows_of(report, key: str) -> list[dict]:
    return [row for row in report.rows() if row["key"] == key]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_delta_that_repoints_an_enrollment_moves_it(tenancy, tmp_path, version):
    files = district(version, students=2)
    tenancy.run(package(tmp_path / "bulk.zip", version, files))
    moved = dict(files["enrollments.csv"][1], userSourcedId="u2")
    files["enrollments.csv"][2]["status"] = "tobedeleted"
    delta = {"enrollments.csv": [files["enrollments.csv"][2], moved]}
    report = tenancy.run(package(tmp_path / "delta.zip", version, delta, mode="delta"))
    assert report.status == "applied", report.as_dict()
    assert rows_of(report, "e-u1")[0]["outcome"] == "updated"
    u2 = tenancy.user("u2").id
    with tenancy.database.session() as session:
        enrollment = session.scalars(select(Enrollment).where(Enrollment.sourced_id == "e-u1"))
        assert enrollment.one().user_id == u2


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_repointing_an_enrollment_to_a_missing_user_or_class_is_r108(tenancy, tmp_path, version):
    files = district(version, students=1)
    tenancy.run(package(tmp_path / "bulk.zip", version, files))
    rows = [
        dict(files["enrollments.csv"][1], userSourcedId="nobody"),
        dict(files["enrollments.csv"][0], classSourcedId="no-class"),
    ]
    report = tenancy.run(
        package(tmp_path / "d.zip", version, {"enrollments.csv": rows}, mode="delta")
    )
    assert report.status == "refused"
    assert [r["code"] for r in rows_of(report, "e-u1")] == ["R108"]
    assert "nobody" in rows_of(report, "e-u1")[0]["message"]
    assert [r["code"] for r in rows_of(report, "e-u0")] == ["R108"]
