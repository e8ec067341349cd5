"""OneRoster exports re-imported into an empty tenant reproduce the same records."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from oneroster.csv_cells import GUID, GUID_COLUMNS
from oneroster.csv_files import HEADERS, iter_list, open_package
from server import districts
from server.app import create_app
from server.db import AcademicSession, Course, Enrollment, Org, SchoolClass, User
from server.domain import oauth, roster, staff, users
from server.domain.actors import staff_actor, system_actor
from server.domain.connections import create_connection
from server.domain.tenants import MANUAL_CONNECTION_NAME, create_tenant
from server.domain.users import RoleAssignment
from server.errors import NotAllowed
from server.imports.engine import ImportOptions, run_import
from server.imports.exports import export
from tests.imports.conftest import bearer
from tests.imports.packages import district, full_district, package


def snapshot(database, tenant_id: str) -> dict[str, list]:
    with database.session() as session:
        orgs = {o.id: o.sourced_id for o in session.scalars(select(Org))}
        terms = {t.id: t.sourced_id for t in session.scalars(select(AcademicSession))}
        courses = {c.id: c.sourced_id for c in session.scalars(select(Course))}

        def where(model):
            return select(model).where(model.tenant_id == tenant_id).order_by(model.sourced_id)

        return {
            "orgs": [
                (o.sourced_id, o.name, o.type, o.identifier, orgs.get(o.parent_id))
                for o in session.scalars(where(Org))
            ],
            "terms": [
                (t.sourced_id, t.title, t.type, t.start_date, t.end_date, t.school_year)
                for t in session.scalars(where(AcademicSession))
            ],
            "courses": [
                (
                    c.sourced_id,
                    c.title,
                    c.course_code,
                    c.grades,
                    orgs.get(c.org_id),
                    terms.get(c.school_year_id),
                )
                for c in session.scalars(where(Course))
            ],
            "classes": [
                (
                    k.sourced_id,
                    k.title,
                    k.class_code,
                    k.class_type,
                    orgs[k.school_id],
                    courses.get(k.course_id),
                    sorted(t.sourced_id for t in k.terms),
                    k.periods,
                )
                for k in session.scalars(where(SchoolClass))
            ],
            "users": [
                (
                    u.sourced_id,
                    u.username,
                    u.given_name,
                    u.family_name,
                    u.email,
                    u.identifier,
                    u.primary_role,
                    u.grades,
                    u.status,
                    u.preferred_given_name,
                    sorted((orgs[r.org_id], r.role, r.role_type) for r in u.roles),
                    u.birth_date,
                    u.gender,
                )
                for u in session.scalars(where(User))
            ],
            "enrollments": [
                (e.sourced_id, e.role, e.primary, e.begin_date, e.status)
                for e in session.scalars(where(Enrollment))
            ],
        }


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_oneroster_export_reimported_into_an_empty_tenant_reproduces_the_records(
    tenancy, tmp_path, version
):
    files = district(version, students=4)
    files["users.csv"][2]["enabledUser"] = "false"
    files["demographics.csv"] = [
        {"sourcedId": "u1", "birthDate": "2017-05-04", "sex": "female", "asian": "true"}
    ]
    assert tenancy.run(package(tmp_path / "in.zip", version, files)).status == "applied"
    out = tmp_path / "out.zip"
    with tenancy.database.session() as session:
        export(session, system_actor(tenancy.tenant_id), tenancy.box, f"oneroster-{version}", out)

    again = tenancy.run(out)
    assert set(again.outcomes) == {"unchanged"}, again.as_dict()

    with tenancy.database.session() as session:
        other = create_tenant(session, "Empty District")
        create_connection(session, system_actor(other.id), "SIS", "oneroster")
        other_id = other.id
    report = run_import(tenancy.database, tenancy.box, other_id, "SIS", out, ImportOptions())
    assert report.status == "applied", report.as_dict()
    original = snapshot(tenancy.database, tenancy.tenant_id)
    copy = snapshot(tenancy.database, other_id)
    assert copy == original
    assert original["users"][1][-2:] == (__import__("datetime").date(2017, 5, 4), "female")
    assert [u[8] for u in original["users"]] == ["active", "active", "inactive", "active", "active"]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_an_export_carries_every_record_and_field_that_was_imported(tenancy, tmp_path, version):
    """Import -> export -> compare, cell by cell; every exported sourcedId is a OneRoster GUID
    (LongsightGroup/oneroster reports row.invalid_guid for anything else)."""
    files = full_district(version)
    assert tenancy.run(package(tmp_path / "in.zip", version, files)).status == "applied"
    out = tenancy.export(f"oneroster-{version}", tmp_path / "out.zip")
    with open_package(out) as exported:
        assert exported.files() == [name for name in HEADERS[version] if name in files]
        for name, rows in files.items():
            got = {row.get("sourcedId"): row for row in exported.rows(name)}
            assert sorted(got) == sorted(row["sourcedId"] for row in rows), name
            for row in rows:
                for column in HEADERS[version][name]:
                    if column in NOT_EXPORTED:
                        continue
                    want = row.get(column, "")
                    assert got[row["sourcedId"]].get(column) == want, (name, column)
            for row in got.values():
                for column in GUID_COLUMNS:
                    for item in iter_list(row.get(column)):
                        assert GUID.fullmatch(item), (name, column, item)


# status and dateLastModified are blank in a bulk export; passwords are stored as hashes or
# (user profiles) not kept, so no export can carry them.
NOT_EXPORTED = {"status", "dateLastModified", "password"}


def test_roles_that_came_without_a_sourced_id_export_valid_ones(tenancy, tmp_path):
    assert tenancy.run(package(tmp_path / "in.zip", "1.1", district())).status == "applied"
    out = tenancy.export("oneroster-1.2", tmp_path / "out.zip")
    with open_package(out) as exported:
        keys = [row.get("sourcedId") for row in exported.rows("roles.csv")]
    assert len(keys) == 4 and all(GUID.fullmatch(key) for key in keys), keys


def test_imported_user_profiles_and_role_details_are_served_over_rest(tenancy, tmp_path, settings):
    """OneRoster 1.2 REST users carry userProfiles[] (profileId, vendorId, credentials) and
    each role's userProfile, as the 1.2 Rostering OpenAPI's UserProfile/Role shapes say."""
    files = full_district("1.2")
    assert tenancy.run(package(tmp_path / "in.zip", "1.2", files)).status == "applied"
    scopes = ["https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"]
    with tenancy.database.session() as session:
        made = oauth.create_client(
            session, system_actor(tenancy.tenant_id), "reader", kind="api", scopes=scopes
        )
        oauth.store_token(session, made.client, "reader-token", " ".join(scopes))
    with TestClient(create_app(settings, database=tenancy.database)) as client:
        answer = client.get(
            "/ims/oneroster/rostering/v1p2/users/u1",
            headers={"Authorization": "Bearer reader-token"},
        )
    user = answer.json()["user"]
    assert user["userProfiles"] == [
        {
            "profileId": "p1",
            "profileType": "reading",
            "vendorId": "acme",
            "applicationId": "reader",
            "description": "Reading app",
            "credentials": [{"type": "password", "username": "u1-acme"}],
        }
    ]
    by_org = {role["org"]["sourcedId"]: role for role in user["roles"]}
    assert by_org["s2"]["userProfile"] == "p1" and by_org["s1"]["beginDate"] == "2026-08-01"


@pytest.mark.parametrize("fmt", ["school-csv", "xlsx", "oneroster-1.1", "oneroster-1.2"])
def test_every_export_for_upload_trial_runs_back_with_zero_errors(tenancy, tmp_path, fmt):
    """Students made by hand (no grade, no class) and a user pushed without any role are in
    the tenant; whatever the export holds must import back without an error row."""
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        school = roster.create_org(
            session, actor, {"name": "Maple Primary", "type": "school", "sourced_id": "maple"}
        )
        klass = roster.create_class(session, actor, {"title": "5A", "school_id": school.id})
        made = {
            "given_name": "Hand",
            "family_name": "Made",
            "roles": [RoleAssignment(school.id, "student")],
        }
        users.create_user(session, actor, made)
        graded = users.create_user(
            session, actor, made | {"given_name": "Graded", "grades": ["05"]}
        )
        roster.enroll(session, actor, graded, klass)
        users.create_user(session, actor, {"given_name": "No", "family_name": "Role"})
        school_id = school.id
    out = tenancy.export(
        fmt, tmp_path / f"out.{fmt}", school_ids=[school_id] if "oneroster" not in fmt else None
    )
    if fmt.startswith("oneroster"):
        with tenancy.database.session() as session:
            other = create_tenant(session, "Empty District")
            create_connection(session, system_actor(other.id), "SIS", "oneroster")
            other_id = other.id
        report = run_import(
            tenancy.database, tenancy.box, other_id, "SIS", out, ImportOptions(dry_run=True)
        )
    else:
        name = "out.xlsx" if fmt == "xlsx" else "out.csv"
        renamed = out.rename(tmp_path / name)
        report = tenancy.run(renamed, connection=MANUAL_CONNECTION_NAME, dry_run=True)
    report.as_dict()
    assert report.errors == 0 and report.status == "valid", [
        r for r in report.rows() if r["outcome"] == "error"
    ]


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_a_school_export_holds_the_users_the_school_sees(
    client, tenancy, admin_token, tmp_path, version
):
    """A student with a role only at school A but enrolled in a class at school B is a user
    of school B for its admins and its OneRoster readers (issue 16 item 1): B's export lists
    them, with their enrollment, and the package imports back into an empty tenant cleanly."""
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        north = districts.school(session, actor, "North", sourced_id="north")
        south = districts.school(session, actor, "South", sourced_id="south")
        ana = districts.student(session, actor, north, "Ana", "Lee", sourced_id="ana")
        districts.student(session, actor, north, "Bo", "Kim", sourced_id="bo")
        art = districts.klass(session, actor, south, "Art", sourced_id="art")
        roster.enroll(session, actor, ana, art, sourced_id="ana-art")
    exported = client.get(
        f"/admin/api/exports?format=oneroster-{version}&school=south", headers=bearer(admin_token)
    )
    assert exported.status_code == 200, exported.text
    path = tmp_path / "south.zip"
    path.write_bytes(exported.content)
    with open_package(path) as package_:
        users_ = [row.get("sourcedId") for row in package_.rows("users.csv")]
        enrolled = [row.get("userSourcedId") for row in package_.rows("enrollments.csv")]
    assert users_ == ["ana"] and enrolled == ["ana"]
    with tenancy.database.session() as session:
        other = create_tenant(session, "Empty District")
        create_connection(session, system_actor(other.id), "SIS", "oneroster")
        other_id = other.id
    report = run_import(
        tenancy.database, tenancy.box, other_id, "SIS", path, ImportOptions(dry_run=True)
    )
    report.as_dict()
    assert report.errors == 0, [r for r in report.rows() if r["outcome"] == "error"]


def test_export_checks_the_actors_schools_itself(tenancy, tmp_path):
    """exports.export takes the actor and checks it (issue 16 item 1), so no caller has to
    remember import_scope: a school admin exports their own school and nobody else's."""
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        north = districts.school(session, actor, "North", sourced_id="north")
        south = districts.school(session, actor, "South", sourced_id="south")
        made = staff.create_staff(
            session, actor, "nora", "school_admin", school_sourced_ids=["north"], password=None
        )
        admin = staff_actor(made.staff)
        ids = {"north": north.id, "south": south.id}
    out = tmp_path / "out.zip"
    with tenancy.database.session() as session:
        with pytest.raises(NotAllowed):
            export(session, admin, tenancy.box, "oneroster-1.2", out, school_ids=[ids["south"]])
        held = export(session, admin, tenancy.box, "oneroster-1.2", out, school_ids=[ids["north"]])
        assert held == 0
