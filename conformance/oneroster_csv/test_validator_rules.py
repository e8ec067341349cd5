"""Single-fault variants of a valid package, one per rule of LongsightGroup/oneroster's CSV
validator (``src/one-roster-csv-rostering-fields.ts``, ``-record-engine.ts``,
``-record-reference-validation.ts``; its README says it passes 1EdTech's 719 official CSV
cases). Each variant changes one cell of ``full_district`` and must get the code below on
that row, in lenient reading and with ``--strict``.

Accepted deviations (lenient reading only; ``--strict`` refuses every one of them, R102):
the validator's ``field_forbidden_in_bulk``, ``field_required_in_delta``, ``invalid_enum``
for a value in another case, ``invalid_boolean`` for ``TRUE`` and ``invalid_list`` for an
empty list item are repaired and reported as W203 — the 1.2.1 CSV binding (§2.1.1) says a
bulk file's ``status``/``dateLastModified`` "should" be blank and producers in the field
(see test_real_packages.py) send them; SPEC §10 asks for the repair to be reported, not
refused. ``agentSourcedIds`` naming no user is not checked: Rollcall keeps agents as given
and builds no relation on them.
"""

from __future__ import annotations

import pytest

from tests.imports.packages import full_district, package

DELTA_STAMP = {"status": "active", "dateLastModified": "2026-01-05T10:00:00.000Z"}

# (validator rule, version, mode, file, key, column, value, lenient code, strict code)
VARIANTS = [
    ("row.invalid_guid", "1.2", "bulk", "users.csv", "u1", "sourcedId", "u#1", "R102", "R102"),
    (
        "row.invalid_guid (list)",
        "1.1",
        "bulk",
        "classes.csv",
        "k1",
        "termSourcedIds",
        "t1,t 2",
        "R102",
        "R102",
    ),
    (
        "row.invalid_datetime",
        "1.2",
        "delta",
        "users.csv",
        "u1",
        "dateLastModified",
        "1/05/2023",
        "R102",
        "R102",
    ),
    (
        "row.invalid_date",
        "1.1",
        "bulk",
        "academicSessions.csv",
        "t1",
        "startDate",
        "2026/08/01",
        "R102",
        "R102",
    ),
    (
        "row.invalid_date",
        "1.2",
        "bulk",
        "enrollments.csv",
        "e-u1",
        "beginDate",
        "01-08-2026",
        "R102",
        "R102",
    ),
    (
        "row.invalid_year",
        "1.2",
        "bulk",
        "academicSessions.csv",
        "t1",
        "schoolYear",
        "27",
        "R102",
        "R102",
    ),
    ("row.invalid_boolean", "1.1", "bulk", "users.csv", "u1", "enabledUser", "yes", "R102", "R102"),
    (
        "row.invalid_boolean",
        "1.2",
        "bulk",
        "enrollments.csv",
        "e-u1",
        "primary",
        "1",
        "R102",
        "R102",
    ),
    ("row.invalid_enum", "1.2", "bulk", "orgs.csv", "s2", "type", "college", "R102", "R102"),
    ("row.invalid_enum", "1.1", "bulk", "classes.csv", "k1", "classType", "lab", "R102", "R102"),
    ("row.invalid_enum", "1.2", "bulk", "roles.csv", "r-u1", "role", "wizard", "R102", "R102"),
    ("row.invalid_enum", "1.2", "bulk", "demographics.csv", "u1", "sex", "m", "R102", "R102"),
    (
        "row.missing_required_value",
        "1.1",
        "bulk",
        "users.csv",
        "u1",
        "givenName",
        "",
        "R101",
        "R101",
    ),
    (
        "row.missing_required_value",
        "1.2",
        "bulk",
        "userProfiles.csv",
        "p1",
        "vendorId",
        "",
        "R101",
        "R101",
    ),
    (
        "reference (class)",
        "1.1",
        "bulk",
        "enrollments.csv",
        "e-u1",
        "classSourcedId",
        "k9",
        "R108",
        "R108",
    ),
    (
        "reference (user)",
        "1.2",
        "bulk",
        "enrollments.csv",
        "e-u1",
        "userSourcedId",
        "u9",
        "R108",
        "R108",
    ),
    (
        "reference (school)",
        "1.2",
        "bulk",
        "classes.csv",
        "k1",
        "schoolSourcedId",
        "s9",
        "R108",
        "R108",
    ),
    ("reference (org)", "1.1", "bulk", "courses.csv", "c1", "orgSourcedId", "s9", "R108", "R108"),
    ("reference (org)", "1.2", "bulk", "roles.csv", "r-u1", "orgSourcedId", "s9", "R108", "R108"),
    (
        "reference (primaryOrg)",
        "1.2",
        "bulk",
        "users.csv",
        "u1",
        "primaryOrgSourcedId",
        "s9",
        "R108",
        "R108",
    ),
    (
        "reference (parent)",
        "1.1",
        "bulk",
        "orgs.csv",
        "s1",
        "parentSourcedId",
        "d9",
        "R108",
        "R108",
    ),
    (
        "field_forbidden_in_bulk",
        "1.1",
        "bulk",
        "users.csv",
        "u1",
        "dateLastModified",
        "2026-01-05T10:00:00.000Z",
        "W203",
        "R102",
    ),
    (
        "field_forbidden_in_bulk",
        "1.2",
        "bulk",
        "courses.csv",
        "c1",
        "status",
        "active",
        "W203",
        "R102",
    ),
    ("field_required_in_delta", "1.2", "delta", "classes.csv", "k1", "status", "", "W203", "R102"),
    (
        "invalid_enum (case)",
        "1.2",
        "bulk",
        "classes.csv",
        "k1",
        "classType",
        "Scheduled",
        "W203",
        "R102",
    ),
    (
        "invalid_boolean (case)",
        "1.2",
        "bulk",
        "users.csv",
        "u1",
        "enabledUser",
        "True",
        "W203",
        "R102",
    ),
    (
        "invalid_list (empty item)",
        "1.1",
        "bulk",
        "classes.csv",
        "k1",
        "periods",
        "1,,2",
        "W203",
        "R102",
    ),
]


def test_the_base_package_is_valid_in_both_versions_and_both_modes(tenancy, tmp_path):
    for version in ("1.1", "1.2"):
        for mode in ("bulk", "delta"):
            report = tenancy.run(_package(tmp_path, version, mode), dry_run=True, lenient=False)
            assert report.status == "valid", (version, mode, report.as_dict())
            assert not [r for r in report.rows() if r["code"]], (version, mode)


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize(
    ("rule", "version", "mode", "file", "key", "column", "value", "lenient_code", "strict_code"),
    VARIANTS,
    ids=[f"{v[0]}-{v[1]}-{v[3]}-{v[5]}" for v in VARIANTS],
)
def test_a_single_fault_gets_the_validators_verdict(
    tenancy,
    tmp_path,
    strict,
    rule,
    version,
    mode,
    file,
    key,
    column,
    value,
    lenient_code,
    strict_code,
):
    path = _package(tmp_path, version, mode, (file, key, column, value))
    report = tenancy.run(path, dry_run=True, lenient=not strict)
    coded = [(r["file"], r["row"], r["code"]) for r in report.rows() if r["code"]]
    expected = strict_code if strict else lenient_code
    assert [code for f, _, code in coded if f == file] == [expected], (rule, coded)
    assert all(f == file or code == "R108" for f, _, code in coded), coded
    assert report.status == ("valid" if expected == "W203" else "invalid")


def _package(tmp_path, version: str, mode: str, fault: tuple | None = None):
    files = full_district(version)
    for rows in files.values():
        for row in rows:
            row.pop("password", None)  # a policy matter, not the binding's
            if mode == "delta":
                row |= DELTA_STAMP
    if fault is not None:
        file, key, column, value = fault
        row = next(r for r in files[file] if r["sourcedId"] == key)
        row[column] = value
    return package(tmp_path / "p.zip", version, files, mode=mode)
