"""Passwords in a school CSV or XLSX (the ``Password`` column) never reach a log line, an
audit row, a stored import report or the report the API answers, whether the trial run
accepts them, the policy refuses them (R106) or the import applies them (SPEC §8; issue 11
defect 5 and the secrets test, which covers the OneRoster path)."""

from __future__ import annotations

import io
import json
import logging

from openpyxl import Workbook
from sqlalchemy import select

from server.db import AuditEvent, ImportRowResult, ImportRun, ProviderFailure, User
from server.logs import configure_logging
from tests.imports.conftest import bearer
from tests.imports.packages import district, package

GOOD = "Kite-Flying-Over-Hills-5521"
WEAK = "password1"  # on the bundled common-password list: refused with R106
HEADER = ["Student Full Name", "Username", "Year Group", "Class", "Gender", "Password"]
ROWS = [["Ann Lee", "ann.lee", "7", "7A", "F", GOOD], ["Ben Ray", "ben.ray", "7", "7A", "M", WEAK]]


def _csv() -> bytes:
    lines = [",".join(row) for row in [HEADER, *ROWS]]
    return ("\r\n".join(lines) + "\r\n").encode()


def _xlsx() -> bytes:
    book = Workbook()
    for row in [HEADER, *ROWS]:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _stored(database) -> str:
    with database.session() as session:
        rows = []
        for model in (AuditEvent, ImportRun, ImportRowResult, ProviderFailure):
            table = model.__table__
            rows += [dict(r) for r in session.execute(select(*table.columns)).mappings()]
        return json.dumps(rows, default=str)


def test_school_file_passwords_stay_out_of_logs_audit_and_reports(
    client, tenancy, admin_token, tmp_path
):
    assert tenancy.run(package(tmp_path / "sis.zip", "1.1", district())).status == "applied"
    stream = io.StringIO()
    configure_logging(stream=stream)
    answers = []
    try:
        for name, body in (("students.csv", _csv()), ("students.xlsx", _xlsx())):
            for data in (
                {"dry_run": "true", "connection": "SIS", "school": "s1"},
                {"dry_run": "false", "connection": "SIS", "school": "s1", "skip_invalid": "true"},
            ):
                response = client.post(
                    "/admin/api/imports",
                    data=data,
                    files={"file": (name, body, "application/octet-stream")},
                    headers=bearer(admin_token),
                )
                assert response.status_code in (200, 422), response.text
                answers.append(response.text)
                run = client.get(
                    f"/admin/api/imports/{response.json()['id']}", headers=bearer(admin_token)
                )
                answers.append(run.text)
    finally:
        logging.getLogger().handlers[:] = []
    with tenancy.database.session() as session:
        ann = session.scalars(select(User).where(User.username == "ann.lee")).one()
        assert ann.credential is not None and ann.credential.password_hash  # the password was set
    records = {"log": stream.getvalue(), "stored": _stored(tenancy.database), "api": answers}
    assert "R106" in records["stored"]  # the weak password was reported, by its code
    assert '"message": "request"' in records["log"]
    for secret in (GOOD, WEAK):
        leaks = [where for where, text in records.items() if secret in str(text)]
        assert leaks == [], f"{secret} found in {leaks}"
