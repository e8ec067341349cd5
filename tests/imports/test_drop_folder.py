"""Drop folders: a hub or SIS delivers OneRoster zips by SFTP and the worker imports them.

The behaviour copied from SchoolMint Hero's daily SFTP sync (``/work/shared/seeds/``: "Student
accounts are deactivated when they are removed from the SFTP import file"): each file is a full
import of the connection, so a student missing from today's file is deactivated (W201) - under
the shrink guard, like any full import.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path

from sqlalchemy import select

from server.app import create_app
from server.context import AppContext
from server.db import ImportRun, Job, RecordStatus, User
from server.domain import jobs
from server.domain.actors import system_actor
from server.domain.connections import get_connection
from server.domain.import_limits import ImportLimits
from server.domain.sources import set_drop_dir
from server.domain.staff import create_staff
from server.worker import enqueue_due_syncs, runners
from tests.imports.packages import district, package
from tests.web.conftest import csrf_of, sign_in

AN_HOUR_AGO = time.time() - 3600


def _watch(tenancy, folder: Path, connection: str = "SIS") -> None:
    """The operator's delivery folders live under ``tmp_path`` in these tests."""
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id, "test")
        watcher = get_connection(session, tenancy.tenant_id, connection)
        set_drop_dir(session, actor, watcher, str(folder), root=folder.parent.parent)


def _worker_pass(context: AppContext) -> int:
    """What the worker does on one poll: queue due scans, run due jobs."""
    enqueue_due_syncs(context)
    return jobs.run_due(context.database, runners(context))


def _settled(path: Path) -> Path:
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))  # delivered an hour ago, untouched since
    return path


def _runs(tenancy) -> list[tuple[str, str]]:
    with tenancy.database.session() as session:
        return [
            (run.status, run.actor_name)
            for run in session.scalars(
                select(ImportRun).where(ImportRun.tenant_id == tenancy.tenant_id)
            )
        ]


def test_the_worker_imports_a_complete_zip_and_moves_it_to_done(context, tenancy, tmp_path):
    drop = tmp_path / "sftp" / "sis"
    drop.mkdir(parents=True)
    _watch(tenancy, drop)
    _settled(package(drop / "roster.zip", "1.1", district(students=3)))
    growing = package(drop / "tomorrow.zip", "1.1", district(students=4))  # still being written
    (drop / ".upload.zip.part").write_bytes(b"PK")  # an uploader's temporary name

    assert _worker_pass(context) == 1
    assert tenancy.count(User, status=RecordStatus.ACTIVE) == 4  # 3 students and a teacher
    done = list((drop / "done").iterdir())
    assert [p.name.endswith("-roster.zip") for p in done] == [True]
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == [
        ".upload.zip.part",
        "tomorrow.zip",
    ]
    assert _runs(tenancy) == [("applied", "drop folder")]
    assert _worker_pass(context) == 0  # only a growing file left: no scan is queued
    _settled(growing)
    assert _worker_pass(context) == 0  # complete now, but scanned a moment ago: it waits
    with context.database.session() as session:
        job = session.scalars(select(Job).where(Job.kind == "drop_scan")).one()
        assert job.status == "done" and job.payload["connection"] == "SIS"
    assert growing.exists()


def test_a_bad_zip_goes_to_failed_with_its_reason_and_a_stored_report(context, tenancy, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    _watch(tenancy, drop)
    files = district(students=2)
    files["users.csv"][1]["role"] = "wizard"  # an invalid value: the trial run refuses the file
    _settled(package(drop / "monday.zip", "1.1", files))
    (drop / "garbage.zip").write_bytes(b"not a zip at all")
    _settled(drop / "garbage.zip")

    assert _worker_pass(context) == 1
    assert tenancy.count(User) == 0  # nothing written
    failed = sorted((drop / "failed").iterdir(), key=lambda p: p.name[-12:])
    names = [p.name.split("-", 1)[1] for p in failed]
    assert sorted(names) == ["garbage.txt", "garbage.zip", "monday.txt", "monday.zip"]
    reasons = {p.name.split("-", 1)[1]: p.read_text() for p in failed if p.suffix == ".txt"}
    assert "Refused" in reasons["monday.txt"]
    assert reasons["garbage.txt"].strip()
    assert not any(p.is_file() for p in drop.iterdir())
    assert sorted(status for status, _ in _runs(tenancy)) == ["failed", "refused"]


def test_admin_points_a_connection_at_a_drop_folder_from_the_command_line(
    rollcall, monkeypatch, tmp_path
):
    monkeypatch.setenv("ROLLCALL_DROP_ROOT", str(tmp_path / "sftp"))
    drop = tmp_path / "sftp" / "sis"
    drop.mkdir(parents=True)
    code, _, err = rollcall("connection", "add", "SIS", "--kind", "oneroster")
    assert code == 0, err
    code, out, err = rollcall("connection", "set", "SIS", "--drop-dir", str(drop), "--json")
    assert code == 0, err
    assert json.loads(out)["drop_dir"] == str(drop)
    code, _, err = rollcall("connection", "set", "SIS", "--drop-dir", "relative/path")
    assert code == 1 and "existing absolute path" in err
    code, _, err = rollcall("connection", "add", "Entra", "--kind", "scim", "--drop-dir", str(drop))
    assert code == 1 and "does not import files" in err
    code, _, err = rollcall("connection", "set", "SIS", "--drop-dir", str(tmp_path))
    assert code == 1 and "must be inside" in err and "ROLLCALL_DROP_ROOT" in err
    code, _, err = rollcall("connection", "add", "SIS 2", "--kind", "csv", "--drop-dir", str(drop))
    assert code == 1 and "Another connection already watches" in err


def test_district_admin_sets_a_drop_folder_on_the_connections_page(
    context, settings, tenancy, tmp_path
):
    drop = tmp_path / "drop"
    drop.mkdir()
    with context.database.session() as session:
        admin = create_staff(session, system_actor(tenancy.tenant_id), "skinner", "district_admin")
    client = sign_in(create_app(settings, database=context.database), "skinner", admin.password)
    page = client.get("/admin/connections").text
    saved = client.post(
        "/admin/connections/SIS/source", data={"csrf_token": csrf_of(page), "drop_dir": str(drop)}
    )
    assert saved.status_code == 200 and f"watching {drop}" in saved.text
    refused = client.post(
        "/admin/connections/SIS/source", data={"csrf_token": csrf_of(page), "drop_dir": "nope"}
    )
    assert refused.status_code == 400 and "existing absolute path" in refused.text
    outside = client.post(  # a district admin cannot point the worker at any server folder
        "/admin/connections/SIS/source", data={"csrf_token": csrf_of(page), "drop_dir": "/etc"}
    )
    assert outside.status_code == 400 and "must be inside" in outside.text
    _settled(package(drop / "roster.zip", "1.1", district(students=3)))
    assert _worker_pass(context) == 1
    assert tenancy.count(User, status=RecordStatus.ACTIVE) == 4


def test_a_drop_folder_reads_within_the_configured_import_limits(context, tenancy, tmp_path):
    # Issue 11 defect 1 asks for limits on every import path, all configurable: the drop
    # folder read with the built-in limits whatever ROLLCALL_IMPORT_MAX_* said.
    few_rows = replace(
        context, settings=replace(context.settings, import_limits=ImportLimits(rows=10))
    )
    drop = tmp_path / "sftp" / "sis"
    drop.mkdir(parents=True)
    _watch(tenancy, drop)
    _settled(package(drop / "roster.zip", "1.1", district(students=30)))
    assert _worker_pass(few_rows) == 1
    [failed] = [p for p in (drop / "failed").iterdir() if p.suffix == ".txt"]
    assert "ROLLCALL_IMPORT_MAX_ROWS" in failed.read_text()
    assert tenancy.count(User) == 0
    assert _runs(tenancy) == [("failed", "drop folder")]
