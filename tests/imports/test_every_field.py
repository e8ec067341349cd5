"""Every importable column of every OneRoster CSV file, in both versions, is compared and
applied: a delta that changes one value reports the row ``updated`` and an export carries the
new value (OneRoster 1.1 CSV Tables §2, 1.2.1 CSV Tables §3)."""

from __future__ import annotations

import pytest

from oneroster.csv_files import COMMON, HEADERS, open_package
from server.domain.passwords import verify_password
from tests.imports.packages import full_district, package

# (file, sourcedId of the row, column, new value) for both versions; the values are valid.
SHARED = [
    ("orgs.csv", "s1", "name", "Lincoln Primary"),
    ("orgs.csv", "d2", "type", "state"),
    ("orgs.csv", "s1", "identifier", "LIN-2"),
    ("orgs.csv", "s1", "parentSourcedId", "d2"),
    ("academicSessions.csv", "t1", "title", "Autumn 2026"),
    ("academicSessions.csv", "t1", "type", "semester"),
    ("academicSessions.csv", "t1", "startDate", "2026-08-02"),
    ("academicSessions.csv", "t1", "endDate", "2026-12-21"),
    ("academicSessions.csv", "t1", "parentSourcedId", "y2"),
    ("academicSessions.csv", "t1", "schoolYear", "2028"),
    ("courses.csv", "c1", "schoolYearSourcedId", "y2"),
    ("courses.csv", "c1", "title", "Mathematics"),
    ("courses.csv", "c1", "courseCode", "MAT"),
    ("courses.csv", "c1", "grades", "04"),
    ("courses.csv", "c1", "orgSourcedId", "s2"),
    ("courses.csv", "c1", "subjects", "Mathematics"),
    ("courses.csv", "c1", "subjectCodes", "MA2"),
    ("classes.csv", "k1", "title", "Maths 3B"),
    ("classes.csv", "k1", "grades", "04"),
    ("classes.csv", "k1", "courseSourcedId", "c2"),
    ("classes.csv", "k1", "classCode", "MA3B"),
    ("classes.csv", "k1", "classType", "homeroom"),
    ("classes.csv", "k1", "location", "Room 2"),
    ("classes.csv", "k1", "schoolSourcedId", "s2"),
    ("classes.csv", "k1", "termSourcedIds", "t2"),
    ("classes.csv", "k1", "subjects", "Mathematics"),
    ("classes.csv", "k1", "subjectCodes", "MA2"),
    ("classes.csv", "k1", "periods", "2"),
    ("users.csv", "u1", "enabledUser", "false"),
    ("users.csv", "u1", "username", "stella.d"),
    ("users.csv", "u1", "userIds", "{LDAP:other-1}"),
    ("users.csv", "u1", "givenName", "Stella"),
    ("users.csv", "u1", "familyName", "Dentist"),
    ("users.csv", "u1", "middleName", "Mary"),
    ("users.csv", "u1", "identifier", "ID-new"),
    ("users.csv", "u1", "email", "stella@example.org"),
    ("users.csv", "u1", "sms", "+15550009"),
    ("users.csv", "u1", "phone", "+15551009"),
    ("users.csv", "u1", "agentSourcedIds", "u4"),
    ("users.csv", "u1", "grades", "04"),
    ("users.csv", "u1", "password", "Another-Horse-9-Staple"),
    ("enrollments.csv", "e-u1", "classSourcedId", "k2"),
    ("enrollments.csv", "e-u1", "schoolSourcedId", "s2"),
    ("enrollments.csv", "e-u1", "userSourcedId", "u4"),
    ("enrollments.csv", "e-u1", "role", "proctor"),
    ("enrollments.csv", "e-u1", "primary", "true"),
    ("enrollments.csv", "e-u1", "beginDate", "2026-08-02"),
    ("enrollments.csv", "e-u1", "endDate", "2026-12-21"),
    ("demographics.csv", "u1", "birthDate", "2017-05-05"),
    ("demographics.csv", "u1", "sex", "male"),
    ("demographics.csv", "u1", "americanIndianOrAlaskaNative", "true"),
    ("demographics.csv", "u1", "asian", "true"),
    ("demographics.csv", "u1", "blackOrAfricanAmerican", "true"),
    ("demographics.csv", "u1", "nativeHawaiianOrOtherPacificIslander", "true"),
    ("demographics.csv", "u1", "white", "false"),
    ("demographics.csv", "u1", "demographicRaceTwoOrMoreRaces", "true"),
    ("demographics.csv", "u1", "hispanicOrLatinoEthnicity", "true"),
    ("demographics.csv", "u1", "countryOfBirthCode", "GB"),
    ("demographics.csv", "u1", "stateOfBirthAbbreviation", "WI"),
    ("demographics.csv", "u1", "cityOfBirth", "Shelbyville"),
    ("demographics.csv", "u1", "publicSchoolResidenceStatus", "01653"),
]
ONLY = {
    "1.1": [
        ("users.csv", "u1", "orgSourcedIds", "s2"),
        ("users.csv", "u1", "role", "aide"),
        ("enrollments.csv", "e-u1", "role", "aide"),  # not a 1.2 enrollment role (R102)
    ],
    "1.2": [
        ("users.csv", "u1", "userMasterIdentifier", "master-new"),
        ("users.csv", "u1", "preferredGivenName", "Stell"),
        ("users.csv", "u1", "preferredMiddleName", "Em"),
        ("users.csv", "u1", "preferredFamilyName", "Dent"),
        ("users.csv", "u1", "primaryOrgSourcedId", "s2"),
        ("users.csv", "u1", "pronouns", "she/her"),
        ("roles.csv", "r-u1-s2", "userSourcedId", "u2"),
        ("roles.csv", "r-u1-s2", "roleType", "primary"),
        ("roles.csv", "r-u1-s2", "role", "aide"),
        ("roles.csv", "r-u1-s2", "beginDate", "2026-09-01"),
        ("roles.csv", "r-u1-s2", "endDate", "2027-06-30"),
        ("roles.csv", "r-u1-s2", "orgSourcedId", "d1"),
        ("roles.csv", "r-u1-s2", "userProfileSourcedId", "p2"),
        ("userProfiles.csv", "p1", "userSourcedId", "u2"),
        ("userProfiles.csv", "p1", "profileType", "maths"),
        ("userProfiles.csv", "p1", "vendorId", "other-vendor"),
        ("userProfiles.csv", "p1", "applicationId", "counter"),
        ("userProfiles.csv", "p1", "description", "Maths app"),
        ("userProfiles.csv", "p1", "credentialType", "token"),
        ("userProfiles.csv", "p1", "username", "u1-other"),
    ],
}
# Not importable on purpose: a user profile's password is a credential for another
# application; Rollcall does not keep it (tests/imports/test_oneroster_details.py).
NOT_KEPT = {("userProfiles.csv", "password")}
CASES = [(v, *case) for v in ("1.1", "1.2") for case in SHARED + ONLY[v]]


def test_the_walk_covers_every_column_of_every_file():
    for version in ("1.1", "1.2"):
        walked = {(file, column) for file, _, column, _ in SHARED + ONLY[version]}
        every = {
            (file, column)
            for file, header in HEADERS[version].items()
            for column in header
            if column not in COMMON
        }
        assert every - NOT_KEPT - walked == set(), version


def _delta(version: str, file: str, key: str, column: str, value: str) -> dict:
    """The delta that changes one cell: the row alone; for roles.csv (applied through the
    users, see server/imports/oneroster_csv/) every role row with every user row."""
    files = full_district(version)
    for row in files[file]:
        if row["sourcedId"] == key:
            row[column] = value
    if file == "roles.csv":
        return {"roles.csv": files["roles.csv"], "users.csv": files["users.csv"]}
    return {file: [row for row in files[file] if row["sourcedId"] == key]}


@pytest.mark.parametrize(("version", "file", "key", "column", "value"), CASES)
def test_a_changed_value_is_reported_updated_and_stored(
    tenancy, tmp_path, version, file, key, column, value
):
    bulk = tenancy.run(package(tmp_path / "bulk.zip", version, full_district(version)))
    assert bulk.status == "applied", bulk.as_dict()
    delta = _delta(version, file, key, column, value)
    report = tenancy.run(package(tmp_path / "delta.zip", version, delta, mode="delta"))
    assert report.status == "applied", report.as_dict()
    changed = {r["key"]: r for r in report.rows() if r["outcome"] != "unchanged"}
    expected = "deactivated" if column == "enabledUser" else "updated"
    if file == "roles.csv":
        assert changed and {r["outcome"] for r in changed.values()} == {"updated"}, changed
    else:
        assert list(changed) == [key] and changed[key]["outcome"] == expected, report.as_dict()
    if column == "password":
        credential = tenancy.user(key).credential
        assert verify_password(credential.password_hash, value)
        return
    out = tenancy.export(f"oneroster-{version}", tmp_path / "out.zip")
    with open_package(out) as exported:
        listed = list(exported.rows(file))
    rows = {row.get("sourcedId"): row for row in listed}
    assert len(rows) == len(listed), "an exported sourcedId appears twice"
    assert rows[key].get(column) == value
