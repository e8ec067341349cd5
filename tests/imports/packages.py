"""Hand-made OneRoster CSV packages and school CSV files for the import tests."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from oneroster.csv_files import HEADERS

MANIFEST_FILES = (
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItems",
    "orgs",
    "resources",
    "results",
    "users",
)


def csv_text(header: list[str] | tuple[str, ...], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return out.getvalue()


def package(
    path: Path,
    version: str,
    files: dict[str, list[dict[str, str]]],
    *,
    mode: str = "bulk",
    manifest: dict[str, str] | None = None,
    headers: dict[str, list[str]] | None = None,
    raw: dict[str, str | bytes] | None = None,
    with_manifest: bool = True,
) -> Path:
    """Write a zip with a manifest listing ``files`` (rows as dicts) in ``mode``."""
    headers = headers or {}
    names = set(MANIFEST_FILES) | ({"roles", "userProfiles"} if version == "1.2" else set())
    properties = {"manifest.version": "1.0", "oneroster.version": version}
    for name in sorted(names):
        properties[f"file.{name}"] = mode if f"{name}.csv" in files else "absent"
    properties["source.systemName"] = "Test SIS"
    properties.update(manifest or {})
    with zipfile.ZipFile(path, "w") as archive:
        if with_manifest:
            archive.writestr(
                "manifest.csv",
                csv_text(
                    ["propertyName", "value"],
                    [{"propertyName": k, "value": v} for k, v in properties.items()],
                ),
            )
        for name, rows in files.items():
            header = headers.get(name) or list(HEADERS[version][name])
            archive.writestr(name, csv_text(header, rows))
        for name, content in (raw or {}).items():
            archive.writestr(name, content)
    return path


def district(version: str = "1.1", students: int = 3) -> dict[str, list[dict[str, str]]]:
    """A small district: one district org, one school, a term, a course, a class, a teacher
    and ``students`` students, all enrolled."""
    files: dict[str, list[dict[str, str]]] = {
        "orgs.csv": [
            {"sourcedId": "d1", "name": "Springfield District", "type": "district"},
            {
                "sourcedId": "s1",
                "name": "Lincoln Elementary",
                "type": "school",
                "identifier": "LIN",
                "parentSourcedId": "d1",
            },
        ],
        "academicSessions.csv": [
            {
                "sourcedId": "t1",
                "title": "Fall 2026",
                "type": "term",
                "startDate": "2026-08-01",
                "endDate": "2026-12-20",
                "schoolYear": "2027",
            },
        ],
        "courses.csv": [
            {
                "sourcedId": "c1",
                "title": "Maths",
                "courseCode": "MA",
                "grades": "03",
                "orgSourcedId": "s1",
                "schoolYearSourcedId": "t1",
            },
        ],
        "classes.csv": [
            {
                "sourcedId": "k1",
                "title": "Maths 3A",
                "grades": "03",
                "courseSourcedId": "c1",
                "classCode": "MA3A",
                "classType": "scheduled",
                "schoolSourcedId": "s1",
                "termSourcedIds": "t1",
                "periods": "1",
            },
        ],
        "users.csv": [],
        "enrollments.csv": [],
    }
    people = [("u0", "Tina", "Teacher", "teacher", "")] + [
        (f"u{i}", f"Stu{_letters(i)}", f"Dent{_letters(i)}", "student", "03")
        for i in range(1, students + 1)
    ]
    for sourced, given, family, role, grade in people:
        user = {
            "sourcedId": sourced,
            "enabledUser": "true",
            "username": f"{given}.{family}",
            "givenName": given,
            "familyName": family,
            "identifier": f"ID-{sourced}",
            "email": f"{given.lower()}@example.org",
            "grades": grade,
        }
        if version == "1.1":
            user |= {"role": role, "orgSourcedIds": "s1"}
        else:
            user |= {"primaryOrgSourcedId": "s1", "preferredGivenName": given}
            files.setdefault("roles.csv", []).append(
                {
                    "sourcedId": f"r-{sourced}",
                    "userSourcedId": sourced,
                    "roleType": "primary",
                    "role": role,
                    "orgSourcedId": "s1",
                }
            )
        files["users.csv"].append(user)
        files["enrollments.csv"].append(
            {
                "sourcedId": f"e-{sourced}",
                "classSourcedId": "k1",
                "schoolSourcedId": "s1",
                "userSourcedId": sourced,
                "role": role,
                "primary": "true" if role == "teacher" else "false",
                "beginDate": "2026-08-01",
            }
        )
    return files


def _letters(number: int) -> str:
    """1 -> a, 26 -> z, 27 -> aa: names without digits, like real ones."""
    text = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        text = chr(97 + rest) + text
    return text


def full_district(version: str) -> dict[str, list[dict[str, str]]]:
    """A district in which every column of every rostering file holds a value: two schools,
    two school years, two terms, two courses, two classes, a teacher, three enrolled students
    and one student without enrollments (``u4``), demographics and (1.2) user profiles."""
    files = district(version)
    files["orgs.csv"] += [
        {"sourcedId": "d2", "name": "Shelbyville District", "type": "district"},
        {"sourcedId": "s2", "name": "Oak Middle", "type": "school", "parentSourcedId": "d1"},
    ]
    files["orgs.csv"][1]["identifier"] = "LIN"
    years = [
        {"sourcedId": y, "title": f"School year {year}", "type": "schoolYear"}
        | {"startDate": f"{year - 1}-08-01", "endDate": f"{year}-07-31", "schoolYear": str(year)}
        for y, year in (("y1", 2027), ("y2", 2028))
    ]
    files["academicSessions.csv"][0]["parentSourcedId"] = "y1"
    files["academicSessions.csv"] = years + files["academicSessions.csv"]
    files["academicSessions.csv"].append(
        dict(files["academicSessions.csv"][-1], sourcedId="t2", title="Spring 2027")
    )
    course = files["courses.csv"][0]
    course |= {"schoolYearSourcedId": "y1", "subjects": "Maths", "subjectCodes": "MA1"}
    files["courses.csv"].append(dict(course, sourcedId="c2", title="Science", courseCode="SC"))
    klass = files["classes.csv"][0]
    klass |= {"location": "Room 1", "subjects": "Maths", "subjectCodes": "MA1"}
    files["classes.csv"].append(
        dict(klass, sourcedId="k2", title="Science 3", classCode="SC3", schoolSourcedId="s2")
    )
    files["users.csv"].append(
        dict(files["users.csv"][-1], sourcedId="u4", username="Stud.Four", identifier="ID-u4")
    )
    for user in files["users.csv"]:
        number = user["sourcedId"][1:]
        user |= {
            "userIds": f"{{LDAP:ldap-{number}}}",
            "middleName": "Middle",
            "sms": f"+1555000{number}",
            "phone": f"+1555100{number}",
            "agentSourcedIds": "u0",
            "password": f"Correct-Horse-{number}-Battery",
        }
        if version == "1.2":
            user |= {
                "userMasterIdentifier": f"master-{number}",
                "preferredMiddleName": "Mid",
                "preferredFamilyName": user["familyName"],
                "pronouns": "they/them",
            }
    if version == "1.2":
        files["roles.csv"].append(
            {
                "sourcedId": "r-u4",
                "userSourcedId": "u4",
                "roleType": "primary",
                "role": "student",
                "orgSourcedId": "s1",
            }
        )
        for role in files["roles.csv"]:
            role |= {"beginDate": "2026-08-01", "endDate": "2027-07-31"}
        files["roles.csv"].append(
            dict(files["roles.csv"][1], sourcedId="r-u1-s2", orgSourcedId="s2")
            | {"roleType": "secondary", "userProfileSourcedId": "p1"}
        )
        files["userProfiles.csv"] = [
            {
                "sourcedId": "p1",
                "userSourcedId": "u1",
                "profileType": "reading",
                "vendorId": "acme",
                "applicationId": "reader",
                "description": "Reading app",
                "credentialType": "password",
                "username": "u1-acme",
                "password": "Acme-Secret-1",
            }
        ]
    else:
        files["users.csv"][1]["orgSourcedIds"] = "s1,s2"
    for row in files["enrollments.csv"]:
        row["endDate"] = "2026-12-20"
    files["demographics.csv"] = [
        {
            "sourcedId": "u1",
            "birthDate": "2017-05-04",
            "sex": "female",
            "americanIndianOrAlaskaNative": "false",
            "asian": "false",
            "blackOrAfricanAmerican": "false",
            "nativeHawaiianOrOtherPacificIslander": "false",
            "white": "true",
            "demographicRaceTwoOrMoreRaces": "false",
            "hispanicOrLatinoEthnicity": "false",
            "countryOfBirthCode": "US",
            "stateOfBirthAbbreviation": "IL",
            "cityOfBirth": "Springfield",
            "publicSchoolResidenceStatus": "01652",
        }
    ]
    return files
