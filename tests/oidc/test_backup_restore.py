"""Issue 13 defect 9: ``rollcall backup`` and ``rollcall restore``: a backup restored into a
fresh data directory (with the same secret key) signs a student in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from server.app import create_app
from server.db.session import Database
from tests.oidc.conftest import ISSUER, code_flow, exchange, verify_id_token


def _acting_in(monkeypatch, data_dir: Path, database_url: str | None = None) -> None:
    """Point the ``rollcall`` runner at ``data_dir``, with or without a database URL."""
    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(data_dir))
    if database_url:
        monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("ROLLCALL_DATABASE_URL", raising=False)


def test_a_backup_restored_into_a_fresh_data_directory_signs_a_student_in(
    http, district, database_url, issuer_settings, monkeypatch, rollcall, tmp_path
):
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL backups are pg_dump archives (rollcall backup runs pg_dump)")
    saved = tmp_path / "rollcall-backup.sqlite3"
    _acting_in(monkeypatch, tmp_path / "old", database_url)
    code, out, err = rollcall("backup", str(saved))
    assert code == 0, err
    assert "secret key" in out
    again = rollcall("backup", str(saved))
    assert again[0] == 1 and "exists already" in again[2]  # a backup is never overwritten

    fresh = tmp_path / "fresh"
    _acting_in(monkeypatch, fresh)
    code, out, err = rollcall("restore", str(saved))
    assert code == 0, err
    refused = rollcall("restore", str(saved))
    assert refused[0] == 1 and "--replace" in refused[2]

    url = f"sqlite:///{fresh / 'rollcall.sqlite3'}"
    restored = Database(url)
    settings = replace(issuer_settings, data_dir=fresh, database_url=url)
    with TestClient(
        create_app(settings, database=restored), base_url=ISSUER, follow_redirects=False
    ) as client:
        lisa = district.students["lisa"]
        callback = code_flow(client, district.client_id, "lisa", lisa["password"])
        tokens = exchange(client, district, callback["code"])
        assert tokens.status_code == 200, tokens.text
        assert verify_id_token(client, tokens.json()["id_token"])["sub"] == lisa["id"]
    restored.dispose()


def test_restoring_a_file_that_is_not_a_backup_is_refused(monkeypatch, rollcall, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database")
    _acting_in(monkeypatch, tmp_path / "d")
    code, _, err = rollcall("restore", str(junk))
    assert code == 1 and "not a Rollcall backup" in err
