"""Issue 11 item 6 on SQLite: an import prepares its writes on a private copy of the database
and holds the write lock only while it replays them (``server/imports/prepared.py``).

Other writers go on while the import does its work; a write committed meanwhile that the
import may have read makes it prepare again, so the outcome is that of the two in sequence.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from server.app import create_app
from server.db import Enrollment, ImportRun, User
from server.db.session import Database
from server.domain import staff
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.import_runs import RunStatus
from server.domain.tenants import create_tenant
from tests.conftest import TEST_SECRET
from tests.imports.conftest import bearer
from tests.imports.held import HeldImport
from tests.imports.packages import district, package

# these imports are short: every write phase is prepared on a copy, as a long one is
pytestmark = [pytest.mark.sqlite_only, pytest.mark.usefixtures("prepared_always")]

SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def impatient_app(settings, database_url) -> Iterator:
    """The app over a handle that waits only 0.3 s for SQLite's write lock."""
    impatient = Database(database_url, busy_timeout=0.3)
    yield create_app(settings, database=impatient)
    impatient.dispose()


@pytest.fixture
def scim_token(tenancy) -> str:
    with tenancy.database.session() as session:
        return create_connection(session, system_actor(tenancy.tenant_id), "Entra", "scim").token


@pytest.fixture(autouse=True)
def _import_logs(caplog) -> None:
    caplog.set_level(logging.INFO, logger="rollcall.imports")


def _again(caplog) -> list[str]:
    """Why the imports of the test were prepared again (one reason per time)."""
    return [r.reason for r in caplog.records if r.getMessage() == "import prepared again"]


def copies_directory(database: Path) -> Path:
    """Where the private copies of the database go (server/db/replay.py)."""
    return database.with_name(database.name + ".copies")


def _create(client: TestClient, token: str, user_name: str):
    return client.post(
        "/scim/v2/Users",
        json={"schemas": [SCIM_USER], "userName": user_name},
        headers=bearer(token),
    )


def _file(database_url: str) -> Path:
    return Path(str(make_url(database_url).database))


def test_a_scim_create_while_an_import_is_prepared_is_answered_at_once(
    tenancy, impatient_app, scim_token, tmp_path, caplog
):
    archive = package(tmp_path / "district.zip", "1.1", district(students=1200))
    with TestClient(impatient_app) as client, HeldImport(tenancy, archive, at=1200) as held:
        made = _create(client, scim_token, "during-the-import@school.example")
        assert not held.outcome, "the import finished before the SCIM write: hold it longer"
    assert made.status_code == 201, made.text
    report = held.report()
    assert report.status == RunStatus.APPLIED, report.summary
    assert report.outcomes["created"] == report.row_count  # its report is that of a first run
    assert tenancy.count(User) == 1200 + 1 + 1  # the students, the teacher, the SCIM user
    assert tenancy.count(Enrollment) == 1201
    assert _again(caplog) == ["the database changed since the copy"]


def test_a_trial_run_works_while_another_connection_holds_the_write_lock(
    tenancy, database_url, tmp_path
):
    archive = package(tmp_path / "district.zip", "1.1", district(students=600))
    held = HeldImport(tenancy, archive, at=600, dry_run=True)
    holder = sqlite3.connect(_file(database_url), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        held.__enter__()  # it does its work while the lock is held elsewhere
        held.go_on.set()
        assert not held.outcome  # storing its report waits for the lock
    finally:
        holder.execute("COMMIT")
        holder.close()
    held.__exit__()
    report = held.report()
    assert report.status == RunStatus.VALID, report.summary
    assert report.outcomes["created"] == report.row_count
    assert tenancy.count(User) == 0
    assert tenancy.count(ImportRun, status="valid") == 1


def test_a_write_between_preparation_and_replay_is_not_lost(
    tenancy, tmp_path, client, admin_token, caplog
):
    """Staff rename a student while the import that changes the student is prepared: the
    import prepares again and its outcome is that of the rename, then the import."""
    files = district(students=600)
    assert tenancy.run(package(tmp_path / "a.zip", "1.1", files)).status == "applied"
    files["users.csv"][3]["familyName"] = "Changed"  # u3
    archive = package(tmp_path / "b.zip", "1.1", files)
    user = tenancy.user("u3")
    with HeldImport(tenancy, archive, at=600) as held:
        renamed = client.patch(
            f"/admin/api/users/{user.id}",
            json={"given_name": "Renamed", "override": True},
            headers=bearer(admin_token),
        )
        assert not held.outcome
    assert renamed.status_code == 200, renamed.text
    report = held.report()
    assert report.status == RunStatus.APPLIED, report.summary
    (row,) = [r for r in report.as_dict()["row_results"] if r["key"] == "u3"]
    assert row["outcome"] == "updated"
    assert row["changes"]["given_name"] == ["Renamed", user.given_name]
    assert row["changes"]["family_name"] == [user.family_name, "Changed"]
    after = tenancy.user("u3")
    assert (after.given_name, after.family_name) == (user.given_name, "Changed")
    assert _again(caplog) == ["the database changed since the copy"]


def test_a_sign_in_meanwhile_does_not_make_the_import_prepare_again(
    tenancy, tmp_path, client, caplog
):
    with tenancy.database.session() as session:
        system = system_actor(tenancy.tenant_id)
        password = staff.create_staff(session, system, "skinner", "district_admin").password

    def sign_in() -> int:
        data = {"username": "skinner", "password": password}
        return client.post("/admin/login", data=data, follow_redirects=False).status_code

    assert sign_in() == 303  # the first one seals the district's pseudonym key: a write
    archive = package(tmp_path / "district.zip", "1.1", district(students=600))
    with HeldImport(tenancy, archive, at=600) as held:
        signed_in = sign_in()
    assert signed_in == 303
    assert held.report().status == RunStatus.APPLIED
    assert tenancy.count(User) == 601
    assert _again(caplog) == []


def test_another_tenants_write_meanwhile_is_kept_and_the_import_applied(
    tenancy, tmp_path, client, caplog
):
    with tenancy.database.session() as session:
        other = create_tenant(session, "Shelbyville")
        token = create_connection(session, system_actor(other.id), "Entra", "scim").token
        other_id = other.id
    archive = package(tmp_path / "district.zip", "1.1", district(students=600))
    with HeldImport(tenancy, archive, at=600) as held:
        made = _create(client, token, "elsewhere@shelbyville.example")
    assert made.status_code == 201, made.text
    assert held.report().status == RunStatus.APPLIED
    assert tenancy.count(User) == 601
    with tenancy.database.session() as session:
        assert session.scalars(select(User.username).where(User.tenant_id == other_id)).all() == [
            "elsewhere@shelbyville.example"
        ]


def test_the_copy_is_private_and_removed(tenancy, tmp_path, database_url):
    directory = copies_directory(_file(database_url))
    archive = package(tmp_path / "district.zip", "1.1", district(students=600))
    with HeldImport(tenancy, archive, at=600):
        copies = list(directory.iterdir())
        assert len(copies) == 1
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(copies[0].stat().st_mode) == 0o600
    assert list(directory.iterdir()) == []


def test_an_identical_package_is_written_directly_not_prepared_on_a_copy(tenancy, tmp_path, caplog):
    # an identical package's run writes only its report (server/domain/package_runs.py): a
    # copy of the whole database would cost more than the short write it saves
    archive = package(tmp_path / "district.zip", "1.1", district(students=60))
    assert tenancy.run(archive).status == RunStatus.APPLIED
    assert [r for r in caplog.records if r.getMessage() == "import replayed"] != []
    caplog.clear()
    again = tenancy.run(archive)
    assert again.status == RunStatus.APPLIED and "identical" in again.summary
    assert [r for r in caplog.records if r.getMessage() == "import replayed"] == []


CHILD = textwrap.dedent(
    """
    import sys, time
    import server.db.replay as replay
    import server.imports.prepared as prepared
    from server.db.session import Database
    from server.domain.secrets import SecretBox
    from server.imports.engine import ImportOptions, run_import

    url, secret, tenant_id, path, where = sys.argv[1:6]
    executed = replay._execute
    done = []

    def pausing(*args, **kwargs):
        done.append(1)
        if where == "replay" and len(done) == 12:  # of 23: rows of several tables moved
            print("midway", flush=True)
            time.sleep(120)
        return executed(*args, **kwargs)

    def progress(count):
        if where == "prepare" and count >= 500:
            print("midway", flush=True)
            time.sleep(120)

    replay._execute = pausing
    prepared.PREPARE_FROM_ROWS = 0  # as the test's own process (prepared_always)
    run_import(Database(url), SecretBox(secret), tenant_id, "SIS", path, ImportOptions(),
               progress=progress)
    print("finished", flush=True)
    """
)


@pytest.mark.parametrize("where", ["prepare", "replay"])
def test_killed_while_preparing_or_replaying_nothing_is_written_nor_left(
    tenancy, tmp_path, database_url, where
):
    path = package(tmp_path / "big.zip", "1.1", district(students=520))
    arguments = [database_url, TEST_SECRET, tenancy.tenant_id, str(path), where]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *arguments],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "midway"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    directory = copies_directory(_file(database_url))
    left = list(directory.iterdir())
    assert tenancy.count(User) == 0
    assert tenancy.count(ImportRun) == 0
    report = tenancy.run(path)
    assert report.status == "applied" and tenancy.count(User) == 521
    assert list(directory.iterdir()) == []
    if where == "prepare":
        assert len(left) == 1  # what the next run swept


def test_copies_of_dead_processes_are_swept_at_start_up(settings, database, database_url):
    directory = copies_directory(_file(database_url))
    directory.mkdir(mode=0o700, exist_ok=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    stale = directory / f"{dead}-0123.sqlite3"
    stale.write_bytes(b"student data")
    mine = directory / f"{os.getpid()}-4567.sqlite3"
    mine.write_bytes(b"in use")
    try:
        create_app(settings, database=database)
        assert sorted(directory.iterdir()) == [mine]
    finally:
        mine.unlink()
