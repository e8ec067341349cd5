"""Shared fixtures: a real database (SQLite file, or PostgreSQL from
``ROLLCALL_TEST_DATABASE_URL``), migrated once per run and emptied after every test."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from server.cli.main import main
from server.config import Settings, normalise_database_url
from server.context import AppContext
from server.db import Base, Tenant
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain.actors import Actor, system_actor
from server.domain.secrets import SecretBox
from server.domain.tenants import create_tenant
from tests.live import bound_socket, dead_address

TEST_SECRET = "test-secret-key-not-for-production"
CHROMIUM = os.environ.get("ROLLCALL_CHROMIUM", "/usr/bin/chromium")


def _dialect() -> str:
    """The database the run tests against: PostgreSQL with ``ROLLCALL_TEST_DATABASE_URL``."""
    url = os.environ.get("ROLLCALL_TEST_DATABASE_URL", "")
    return "postgresql" if url.startswith("postgres") else "sqlite"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.postgres_only`` / ``sqlite_only`` tests are skipped, with the reason, on
    the other database (``.ci/run`` runs the suite on both)."""
    dialect = _dialect()
    for item in items:
        for marker, needs in (("postgres_only", "postgresql"), ("sqlite_only", "sqlite")):
            if item.get_closest_marker(marker) and dialect != needs:
                reason = f"{marker}: this run tests against {dialect}"
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("ROLLCALL_TEST_DATABASE_URL")
    if url:
        return normalise_database_url(url)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'rollcall-test.sqlite3'}"


@pytest.fixture(scope="session")
def migrated_database(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    _drop_everything(database)
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def database(migrated_database: Database) -> Iterator[Database]:
    """The migrated test database, emptied after the test."""
    yield migrated_database
    empty(migrated_database)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path, database_url=database_url, secret_key=TEST_SECRET)


@pytest.fixture
def context(settings: Settings, database: Database) -> AppContext:
    return AppContext(settings=settings, database=database, box=SecretBox(TEST_SECRET))


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(TEST_SECRET)


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """One unit of work for a domain test (committed at the end, like a request)."""
    with database.session() as session:
        yield session


@pytest.fixture
def rollcall(monkeypatch, tmp_path: Path, database: Database, database_url: str, capsys):
    """``rollcall ARGS…`` run in-process as an operator types it, on the test database:
    returns (exit code, standard output, standard error).

    ``stdin=`` is what the command reads; a usage error (argparse exits) returns its code. The
    data directory is ``tmp_path / "cli"``, the secret key the tests' own. (``tests/ops``
    overrides this name with real ``rollcall`` processes.)
    """
    monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("ROLLCALL_SECRET_KEY", TEST_SECRET)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def tenant(session: Session) -> Tenant:
    return create_tenant(session, "Springfield District")


@pytest.fixture
def system(tenant: Tenant) -> Actor:
    return system_actor(tenant.id, "test")


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium, one per test run (Playwright's sync API allows one driver).

    The browser is the Debian package (``make test`` installs it); none is ever downloaded.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


class Inbox(Message):
    """Every message a test SMTP server received."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list = []

    def handle_message(self, message) -> None:
        self.messages.append(message)


class BoundController(Controller):
    """aiosmtpd's controller serving on a socket bound beforehand (see ``tests.live``)."""

    def __init__(self, handler: Message, sock) -> None:
        self.sock = sock
        super().__init__(handler, hostname="127.0.0.1", port=sock.getsockname()[1])

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self.sock)


@pytest.fixture
def smtp():
    """A real SMTP server on loopback: yields (ROLLCALL_SMTP_URL, inbox)."""
    inbox = Inbox()
    with bound_socket() as sock:
        controller = BoundController(inbox, sock)
        controller.start()
        yield f"smtp://127.0.0.1:{controller.port}?from=noreply@springfield.example", inbox
        controller.stop()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """A loopback URL nothing answers on (the port is held closed for the test)."""
    with dead_address() as url:
        yield url


def scan_database(database: Database) -> dict[tuple[str, str], list[str]]:
    """Every text-like value of every column of every table, read through the inspector so a
    table added later is scanned too (the privacy tests look for a person's values in it)."""
    found: dict[tuple[str, str], list[str]] = {}
    with database.engine.connect() as connection:
        for table in inspect(database.engine).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).mappings().all()
            for row in rows:
                for column, value in row.items():
                    if isinstance(value, str | bytes | dict | list):
                        found.setdefault((table, column), []).append(str(value))
    return found


def stored_where(database: Database, *values: str) -> list[str]:
    """Where any of ``values`` is stored, in any table: ``table.column: value``, sorted."""
    return sorted(
        f"{table}.{column}: {value}"
        for (table, column), texts in scan_database(database).items()
        for value in values
        if any(value in text for text in texts)
    )


def empty(database: Database) -> None:
    """Delete every row (the schema stays). The audit log refuses deletes outside a declared
    amendment (migration 0008), so the cleanup declares one, like purge does."""
    tables = [t.name for t in Base.metadata.sorted_tables if t.name != "audit_amendments"]
    with database.engine.begin() as connection:
        connection.execute(text("INSERT INTO audit_amendments (reason) VALUES ('test cleanup')"))
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
        else:
            for name in reversed(tables):
                connection.execute(text(f"DELETE FROM {name}"))
        connection.execute(text("DELETE FROM audit_amendments"))


def _drop_everything(database: Database) -> None:
    """Start each run from an empty schema so migrations are tested from scratch."""
    with database.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        else:
            Base.metadata.drop_all(connection)
            connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
