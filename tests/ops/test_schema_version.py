"""Issue 13 defect 7: a database migrated by a newer Rollcall stops start-up with one line
naming both versions (not an Alembic traceback)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from server.db.migrate import alembic_config, upgrade
from server.db.session import Database
from tests.live import ROOT


@pytest.mark.parametrize("command", [["migrate"], ["serve", "--port", "9"], ["worker"]])
def test_a_database_from_a_newer_rollcall_stops_start_up_with_one_line(tmp_path, command):
    url = f"sqlite:///{tmp_path / 'newer.sqlite3'}"
    database = Database(url)
    upgrade(database.engine)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0099_from_2028'"))
    database.dispose()
    started = subprocess.run(
        [sys.executable, "-m", "server.cli.main", *command],
        env={
            "PATH": "/usr/bin:/bin",
            "ROLLCALL_DATABASE_URL": url,
            "ROLLCALL_DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    [head] = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert started.returncode == 1
    [line] = started.stderr.strip().splitlines()
    assert "0099_from_2028" in line and head in line
