"""Issue 11 item 6 / issue 15: an import reads its file before it takes SQLite's write lock.

A 102k-row import held the lock ~80 s while it parsed, and a concurrent SCIM ``POST`` waited
and failed. The file is now read, checked and translated first; the write transaction starts
after. These tests hold the upload half-read (a slow disk or network) and write meanwhile.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.db import User
from server.db.session import Database
from server.domain.actors import system_actor
from server.domain.connections import create_connection, get_connection
from server.domain.import_runs import Report, RunStatus
from server.domain.passwords import verify_password
from server.imports.engine import ImportOptions, import_source, open_source
from tests.imports.packages import district, package

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


class StallingUpload(io.BytesIO):
    """An upload whose second half arrives only when the test lets it through."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.half = len(data) // 2
        self.armed = False
        self.reached = threading.Event()
        self.go_on = threading.Event()

    def read(self, size: int | None = -1) -> bytes:
        if self.armed and self.tell() >= self.half and not self.go_on.is_set():
            self.reached.set()
            self.go_on.wait(timeout=60)
        return super().read(size)


@pytest.fixture
def impatient_app(settings, database, database_url) -> Iterator:
    """The app over a database handle that waits only 0.2 s for the write lock (as in
    ``tests/ops/test_busy_database.py``): a write queued behind the import fails fast."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's single write lock; PostgreSQL locks rows, not the database")
    impatient = Database(database_url, busy_timeout=0.2)
    yield create_app(settings, database=impatient)
    impatient.dispose()


def _start_import(tenancy, upload: StallingUpload) -> tuple[threading.Thread, list]:
    with tenancy.database.session() as session:
        connection_id = get_connection(session, tenancy.tenant_id, "SIS").id
    source = open_source(upload, filename="district.zip")
    upload.armed = True  # the zip's directory is read; the rows come in as the run reads them
    outcome: list[Report | BaseException] = []

    def run() -> None:
        try:
            outcome.append(
                import_source(
                    tenancy.database,
                    tenancy.box,
                    tenancy.tenant_id,
                    connection_id,
                    source,
                    ImportOptions(),
                )
            )
        except BaseException as error:  # reported to the test thread
            outcome.append(error)
        finally:
            source.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_scim_write_goes_through_while_an_import_is_still_reading_its_file(
    tenancy, impatient_app, tmp_path: Path
):
    with tenancy.database.session() as session:
        scim_token = create_connection(
            session, system_actor(tenancy.tenant_id), "Entra", "scim"
        ).token
    upload = StallingUpload(
        package(tmp_path / "district.zip", "1.1", district(students=400)).read_bytes()
    )
    thread, outcome = _start_import(tenancy, upload)
    try:
        assert upload.reached.wait(timeout=60), "the import never read its file"
        with TestClient(impatient_app) as client:
            made = client.post(
                "/scim/v2/Users",
                json={"schemas": [SCIM_USER], "userName": "concurrent@school.example"},
                headers={"Authorization": f"Bearer {scim_token}"},
            )
    finally:
        upload.go_on.set()
        thread.join(timeout=120)
    # the SCIM create committed while the import was half-way through reading its file
    assert made.status_code == 201, made.text
    (report,) = outcome
    assert isinstance(report, Report), report
    assert report.status == RunStatus.APPLIED, report.summary
    assert tenancy.count(User) == 400 + 1 + 1  # the students, the teacher, the SCIM user


def test_the_rows_read_ahead_keep_no_password_in_clear_on_disk(tenancy, tmp_path: Path):
    """The spool of read rows is a temporary file: a password in it is sealed, and the run
    still sets it (the student signs in with it)."""
    files = district(students=2)
    files["users.csv"][-1]["password"] = "Spooled-Otter-Lamp-58"
    path = package(tmp_path / "district.zip", "1.1", files)
    source = open_source(path)
    try:
        source.read_ahead(ImportOptions())
        spooled = source.spools["users.csv"]._file  # the bytes on disk
        spooled.seek(0)
        assert b"Spooled-Otter-Lamp-58" not in spooled.read()
        (record,) = [r for r in source.spools["users.csv"] if getattr(r, "password", None)]
        assert record.password == "Spooled-Otter-Lamp-58"
    finally:
        source.close()
    report = tenancy.run(path)
    assert report.status == RunStatus.APPLIED, report.summary
    key = files["users.csv"][-1]["sourcedId"]
    assert verify_password(tenancy.user(key).credential.password_hash, "Spooled-Otter-Lamp-58")
