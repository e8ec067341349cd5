"""Shared fixtures: a real database (SQLite file, or PostgreSQL from
``ROLLCALL_TEST_DATABASE_URL``), migrated once per run and emptied after every test."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from sqlalchemy import text
from sqlalchemy.orm import Session

from server.config import Settings, normalise_database_url
from server.context import AppContext
from server.db import Base, Tenant
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain.actors import Actor, system_actor
from server.domain.secrets import SecretBox
from server.domain.tenants import create_tenant

TEST_SECRET = "test-secret-key-not-for-production"
CHROMIUM = os.environ.get("ROLLCALL_CHROMIUM", "/usr/bin/chromium")


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


@pytest.fixture
def smtp():
    """A real SMTP server on loopback: yields (ROLLCALL_SMTP_URL, inbox)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}?from=noreply@springfield.example", inbox
    controller.stop()


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
