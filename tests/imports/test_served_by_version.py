"""What a OneRoster CSV package stored, read back over REST in each version's vocabulary.

- Enrollment role ``aide``: the 1.1 vocabulary has it; the 1.2 one does not
  (``administrator``, ``proctor``, ``student``, ``teacher``: ``EnrollmentDType.role`` of
  1EdTech's 1.2 OpenAPI, and the 1.2.1 CSV enrollments table as LongsightGroup/oneroster checks
  it). A 1.2 package with it is refused (R102); one stored from a 1.1 source reads as a
  non-primary ``teacher``, in filters and sorts too (see ``oneroster/render.py``).
- ``primaryOrg``: a 1.2 user's ``primaryOrgSourcedId`` is served as given, whatever the order
  of their roles.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from conformance.oneroster.conftest import PREFIXES, SCOPES
from server.db import Enrollment
from server.domain import oauth
from server.domain.actors import system_actor
from tests.imports.packages import district, package


@pytest.fixture
def reading(client, tenancy):
    """``reading(version, path)``: the JSON a district app with every scope gets."""
    with tenancy.database.session() as session:
        made = oauth.create_client(
            session, system_actor(tenancy.tenant_id), "district app", kind="api", scopes=SCOPES
        )
        oauth.store_token(session, made.client, "app-token", " ".join(SCOPES))

    def read(version: str, path: str) -> dict:
        answer = client.get(PREFIXES[version] + path, headers={"Authorization": "Bearer app-token"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    return read


def _with_an_aide(version: str) -> dict:
    files = district(version, students=1)
    files["enrollments.csv"][1]["role"] = "aide"  # u1 helps in the class
    return files


def test_an_aide_enrollment_in_a_12_package_is_r102(tenancy, tmp_path):
    report = tenancy.run(package(tmp_path / "p.zip", "1.2", _with_an_aide("1.2")), dry_run=True)
    found = [r for r in report.rows() if r["key"] == "e-u1"]
    assert [r["code"] for r in found] == ["R102"], report.as_dict()
    assert "aide" in found[0]["message"] and "teacher" in found[0]["message"]


def test_an_aide_from_a_11_package_is_kept_and_reads_as_a_helping_teacher(
    tenancy, tmp_path, reading
):
    files = _with_an_aide("1.1")
    files["enrollments.csv"][1]["primary"] = "true"
    report = tenancy.run(package(tmp_path / "p.zip", "1.1", files))
    assert report.status == "applied", report.as_dict()
    with tenancy.database.session() as session:
        stored = session.scalars(select(Enrollment).where(Enrollment.sourced_id == "e-u1")).one()
        assert (stored.role, stored.primary) == ("aide", True)
    for version in ("v1p1", "v1p2"):
        served = reading(version, "/enrollments/e-u1")["enrollment"]
        assert (served["role"], served["primary"]) == ("teacher", "false"), version
        teachers = reading(version, "/enrollments?filter=role%3D%27teacher%27")["enrollments"]
        assert sorted(e["sourcedId"] for e in teachers) == ["e-u0", "e-u1"], version
        primary = reading(version, "/enrollments?filter=primary%3D%27true%27")["enrollments"]
        assert [e["sourcedId"] for e in primary] == ["e-u0"], version


def _two_schools() -> dict:
    """u1 studies at s1 (primary role) and s2 (secondary) but names s2 as primaryOrg; u2's
    only primary role is at s2, listed after a secondary one at s1."""
    files = district("1.2", students=2)
    files["orgs.csv"].append(
        {"sourcedId": "s2", "name": "Oak Middle", "type": "school", "parentSourcedId": "d1"}
    )
    users = {row["sourcedId"]: row for row in files["users.csv"]}
    users["u1"]["primaryOrgSourcedId"] = "s2"
    users["u2"]["primaryOrgSourcedId"] = ""
    files["roles.csv"] = [r for r in files["roles.csv"] if r["userSourcedId"] != "u2"] + [
        {
            "sourcedId": "r-u2-s1",
            "userSourcedId": "u2",
            "roleType": "secondary",
            "role": "student",
            "orgSourcedId": "s1",
        },
        {
            "sourcedId": "r-u2-s2",
            "userSourcedId": "u2",
            "roleType": "primary",
            "role": "student",
            "orgSourcedId": "s2",
        },
    ]
    files["roles.csv"].append(
        {
            "sourcedId": "r-u1-s2",
            "userSourcedId": "u1",
            "roleType": "secondary",
            "role": "student",
            "orgSourcedId": "s2",
        }
    )
    return files


def test_primary_org_is_the_one_the_package_names(tenancy, tmp_path, reading):
    report = tenancy.run(package(tmp_path / "p.zip", "1.2", _two_schools()))
    assert report.status == "applied", report.as_dict()
    u1 = reading("v1p2", "/users/u1")["user"]
    assert u1["primaryOrg"]["sourcedId"] == "s2"
    assert {(r["org"]["sourcedId"], r["roleType"]) for r in u1["roles"]} == {
        ("s1", "primary"),
        ("s2", "secondary"),
    }
    u2 = reading("v1p2", "/users/u2")["user"]
    assert u2["primaryOrg"]["sourcedId"] == "s2"  # from roles.csv's roleType=primary
    found = reading("v1p2", "/users?filter=primaryOrg.sourcedId%3D%27s2%27")["users"]
    assert sorted(u["sourcedId"] for u in found) == ["u1", "u2"]
