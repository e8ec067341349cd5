"""Packages shaped like the ones real importers meet, each with its expected verdict.

The shapes (headers, cell values, faults) are carried over from two public test sets and
written here by us:

- catalyst/moodle-enrol_oneroster ``tests/fixtures/csv_data/``: ``Test_full_data_set/users.csv``
  (1.1: ``enabledUser`` ``TRUE``, date-only ``dateLastModified``, rows with and without
  ``status``), ``v1p2_full_dataset/Test_full_data_set/users.csv`` (1.2 with the misspelled
  headers ``prefferedGivenName``/``prefferedMiddleName``/``prefferedFamilyName`` and US/UK
  dates ``1/05/2023``, ``15/06/2023``) and ``v1p2_full_dataset/v1p2_full_dataset/orgs.csv`` (a
  department whose ``parentSourcedId`` names no org);
- oat-sa/oneroster-import ``data/samples/OneRosterv1p1BaseCSV/``: ``users.csv`` with
  ``enabledUser`` before ``status``, ``userId`` and ``agents`` for ``userIds``/
  ``agentSourcedIds``, ``ext_*`` columns; ``orgs.csv`` with ``metadata.*`` columns between
  the spec's and a space-separated ``dateLastModified``.

Manifests are ours (the sources' own are not all published beside the files).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.imports.packages import package


@dataclass
class Case:
    name: str
    version: str
    mode: str
    files: dict[str, str]  # file name -> CSV text, as the source wrote it
    status: str  # trial run verdict: valid / invalid / failed
    codes: dict[tuple[str, str], str] = field(default_factory=dict)  # (file, key) -> code
    warnings: list[str] = field(default_factory=list)  # file-level warnings expected


MOODLE_ORG = (
    "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\n"
    "org-sch-222-456,active,2023-05-01T00:00:00.000Z,My School,school,MS,\r\n"
)
MOODLE_11_USERS = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
    "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,"
    "password\r\n"
    "usr-222-123456,active,2023-05-01,TRUE,org-sch-222-456,teacher,john.doe,,John,Doe,Michael,"
    "john.doe,john.doe@myschool.com,6037778888,6032221111,,12,Password1-\r\n"
    "usr-222-66778899,,,TRUE,org-sch-222-456,student,mary.jones,{LDAP:12},Mary,Jones,Jane,"
    "mary.jones,mary.jones@myschool.com,6031234567,6031234567,usr-222-123456,12,Password1-\r\n"
    'usr-222-1234561,active,2023-05-01,TRUE,org-sch-222-456,parent,thomas.joness,"{LDAP:12},'
    '{LTI:15},{Fed:23}",Thomas,Jones,Paul,thomas.joness,thomas.jones@testemail.com,6039876543,'
    "6039876543,usr-222-66778899,10,Password1-\r\n"
)
MOODLE_12_USERS = (
    "sourcedId,status,dateLastModified,enabledUser,username,userIds,givenName,familyName,"
    "middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,userMasterIdentifier,"
    "prefferedGivenName,prefferedMiddleName,prefferedFamilyName,primaryOrgSourcedId,pronouns\r\n"
    "usr-222-123456,active,1/05/2023,TRUE,john.doe,,John,Doe,Michael,john.doe,"
    "john.doe@myschool.com,6037778888,6032221111,,12,Password1-,,,Mick,,org-sch-222-456,"
    "he/him/his\r\n"
    "usr-222-66778899,,,TRUE,mary.jones,{LDAP:12},Mary,Jones,Jane,mary.jones,"
    "mary.jones@myschool.com,6031234567,6031234567,usr-222-123456,12,Password1-,,MJ,,,"
    "org-sch-222-456,she/her/hers\r\n"
    "usr-222-567891,active,15/06/2023,TRUE,anna.brown,{LDAP:34},Anna,Brown,Mary,anna.brown,"
    "anna.brown@myschool.com,6039991234,6038885678,usr-222-987654,11,Password1-,,,,,"
    "org-sch-222-456,\r\n"
)
MOODLE_12_ORGS = (
    "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\r\n"
    "org-sch-222-456,active,2023-05-01T18:25:43.511Z,History Department,department,History,"
    "org-sch-222-3456\r\n"
)
OAT_ORGS = (
    "sourcedId,status,dateLastModified,name,type,identifier,metadata.classification,"
    "metadata.gender,metadata.boarding,parentSourcedId,ext_imagineLearning_databaseId\r\n"
    '12345,active,"2017-05-06 08:01:05",School 1,school,my identifier,Classification 1,mixed,'
    "FALSE,54321,\r\n"
    "54321,,,School 2,school,my identifier 2,Classification 1,,,,\r\n"
)
OAT_USERS = (
    "sourcedId,enabledUser,status,dateLastModified,orgSourcedIds,role,username,userId,givenName,"
    "familyName,identifier,email,sms,phone,agents,ext_imagineLearning_databaseId\r\n"
    "user1,TRUE,,,12345,student,ionut,abc,ionut,padurariu,user identifier,,,,,\r\n"
    "user2,TRUE,,,54321,student,ionut2,abc,ionut2,padurariu,user identifier 2,,,,,\r\n"
)

CASES = [
    Case(
        "moodle 1.1 users, delta: TRUE, a date without time, rows without status",
        "1.1",
        "delta",
        {"orgs.csv": MOODLE_ORG, "users.csv": MOODLE_11_USERS},
        "valid",
        {
            ("users.csv", "usr-222-123456"): "W203",  # TRUE, 2023-05-01 -> date-time
            ("users.csv", "usr-222-66778899"): "W203",  # blank status and dateLastModified
            ("users.csv", "usr-222-1234561"): "W203",
        },
    ),
    Case(
        "moodle 1.2 users and orgs, delta: misspelled headers, d/mm/yyyy dates, a dangling "
        "parent and a dangling agent",
        "1.2",
        "delta",
        {"orgs.csv": MOODLE_12_ORGS, "users.csv": MOODLE_12_USERS},
        "invalid",
        {
            ("orgs.csv", "org-sch-222-456"): "R108",  # parentSourcedId org-sch-222-3456
            ("users.csv", "usr-222-123456"): "R102",  # 1/05/2023
            # its primaryOrgSourcedId names the org refused above
            ("users.csv", "usr-222-66778899"): "R108",
            ("users.csv", "usr-222-567891"): "R102",  # 15/06/2023
        },
        ["unknown column 'prefferedGivenName' ignored"],
    ),
    Case(
        "oat-sa 1.1 base sample, bulk: columns out of order, userId/agents/ext_ columns, "
        "metadata columns, status and dateLastModified filled in a bulk file",
        "1.1",
        "bulk",
        {"orgs.csv": OAT_ORGS, "users.csv": OAT_USERS},
        "valid",
        {
            ("orgs.csv", "12345"): "W203",  # status active, dateLastModified in a bulk file
            ("users.csv", "user1"): "W203",  # TRUE
            ("users.csv", "user2"): "W203",
        },
        ["unknown column 'userId' ignored", "columns missing, read as empty: userIds"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_real_package_shape_gets_its_expected_verdict(tenancy, tmp_path, case):
    path = _with_manifest(tmp_path, case)
    report = tenancy.run(path, dry_run=True)
    assert report.status == case.status, [r for r in report.rows() if r["code"]]
    rows = {(r["file"], r["key"]): r["code"] for r in report.rows() if r["code"]}
    assert rows == case.codes, report.as_dict()
    texts = [w["message"] for w in report.warnings]
    for expected in case.warnings:
        assert any(expected in text for text in texts), texts


def _with_manifest(tmp_path, case: Case):
    listed = {f"file.{name[:-4]}": case.mode for name in case.files}
    return package(
        tmp_path / "case.zip",
        case.version,
        {},
        manifest=listed,
        raw={name: text.encode() for name, text in case.files.items()},
    )
