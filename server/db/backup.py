"""Backups of the database: SQLite through its online backup API, PostgreSQL through pg_dump.

A SQLite backup is a consistent copy taken while Rollcall runs (the backup API copies pages
under a read transaction, writers carry on); restoring copies it back page by page over the
configured database and then applies any newer migrations. PostgreSQL backups are
``pg_dump --format=custom`` archives, restored with ``pg_restore``.

What a backup does **not** hold: the secret key (``ROLLCALL_SECRET_KEY``, or ``secret_key`` in
the data directory). Without it the restored temporary passwords, badges, signing keys and
upstream secrets cannot be opened; keep it apart from the backups.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError

from server.errors import InvalidValue


class BackupUnavailable(InvalidValue):
    """No way to take or restore this database's backup here (PostgreSQL without pg_dump)."""

    code = None


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def backup(url: str, target: Path) -> int:
    """Write a backup of the database at ``url`` to ``target``; returns its size in bytes.

    :raises InvalidValue: ``target`` exists. :raises BackupUnavailable: PostgreSQL and no
        ``pg_dump`` on the PATH (the message says what to run).
    """
    if target.exists():
        raise InvalidValue(f"{target} exists already: choose a new file for the backup.")
    source = sqlite_path(url)
    if source is None:
        _run_postgres_tool("pg_dump", ["--format=custom", f"--file={target}", _libpq(url)])
        return target.stat().st_size
    with closing(sqlite3.connect(source)) as live, closing(sqlite3.connect(target)) as copy:
        live.backup(copy)
    return target.stat().st_size


def restore(url: str, source: Path, *, replace: bool = False) -> None:
    """Replace the database at ``url`` with the backup in ``source``.

    :raises InvalidValue: ``source`` is not a Rollcall backup, or the database holds data and
        ``replace`` is not set. :raises SchemaTooNew: the backup is from a newer Rollcall.
    """
    if not source.is_file():
        raise InvalidValue(f"{source} is not a file.")
    target = sqlite_path(url)
    if target is None:
        flags = ["--clean", "--if-exists", "--no-owner", f"--dbname={_libpq(url)}", str(source)]
        _run_postgres_tool("pg_restore", flags)
        return
    _check_backup(source)
    if target.exists() and target.stat().st_size > 0 and not replace:
        raise InvalidValue(
            f"{target} holds a database already: stop Rollcall and pass --replace to overwrite it."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(source)) as saved, closing(sqlite3.connect(target)) as live:
        saved.backup(live)


def _check_backup(source: Path) -> None:
    from server.db.migrate import alembic_config, check_known_revision  # alembic: only here

    engine = create_engine(f"sqlite:///{source}")
    try:
        with engine.connect() as connection:
            tables = {
                row[0]
                for row in connection.exec_driver_sql(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
            if "alembic_version" not in tables:
                raise InvalidValue(f"{source} is not a Rollcall backup.")
            check_known_revision(connection, alembic_config())
    except DatabaseError as error:
        raise InvalidValue(f"{source} is not a Rollcall backup ({error.orig}).") from None
    finally:
        engine.dispose()


def _libpq(url: str) -> str:
    """A libpq connection URI (``postgresql://``) for the command-line tools."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run_postgres_tool(tool: str, arguments: list[str]) -> None:
    if shutil.which(tool) is None:
        raise BackupUnavailable(
            f"PostgreSQL databases are backed up with {tool}, which is not on the PATH here: "
            f"install the PostgreSQL client tools, or run `{tool} {' '.join(arguments[:-1])} …` "
            "on a machine that has them."
        )
    done = subprocess.run([tool, *arguments], capture_output=True, text=True)
    if done.returncode != 0:
        raise InvalidValue(f"{tool} failed: {done.stderr.strip().splitlines()[-1:]}")
