"""Fixtures for import tests: a committed tenant with connections, and a run helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from starlette.testclient import TestClient

import server.imports.oneroster_csv.source as oneroster_source
from oneroster.csv_records import Sighter
from server.app import create_app
from server.db import User
from server.db.session import Database
from server.domain import staff
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.import_runs import Report
from server.domain.secrets import SecretBox
from server.domain.tenants import create_tenant
from server.imports import prepared
from server.imports.engine import ImportOptions, run_import
from server.imports.exports import export
from tests.imports.hubs import here, hub  # noqa: F401 (fixtures: the pull tests' district hub)


@dataclass
class Tenancy:
    database: Database
    box: SecretBox
    tenant_id: str
    tokens: dict[str, str]

    def run(self, path: Path, connection: str = "SIS", **options) -> Report:
        report = run_import(
            self.database, self.box, self.tenant_id, connection, path, ImportOptions(**options)
        )
        report.as_dict()  # reads the spool while it is open
        return report

    def export(self, fmt: str, path: Path, **options) -> Path:
        """Export the tenant in ``fmt`` (as the system) to ``path``."""
        with self.database.session() as session:
            export(session, system_actor(self.tenant_id), self.box, fmt, path, **options)
        return path

    def count(self, model=User, **where) -> int:
        with self.database.session() as session:
            query = select(func.count()).select_from(model).where(model.tenant_id == self.tenant_id)
            for name, value in where.items():
                query = query.where(getattr(model, name) == value)
            return session.scalar(query)

    def user(self, sourced_id: str) -> User:
        with self.database.session() as session:
            user = session.scalars(
                select(User).where(User.tenant_id == self.tenant_id, User.sourced_id == sourced_id)
            ).first()
            if user is not None:
                _ = user.roles, user.grades, user.credential
            return user


@pytest.fixture
def tenancy(database: Database, box: SecretBox) -> Tenancy:
    with database.session() as session:
        tenant = create_tenant(session, "Springfield District")
        system = system_actor(tenant.id, "test")
        tokens = {
            "SIS": create_connection(session, system, "SIS", "oneroster").token,
            "Clever": create_connection(
                session, system, "Clever", "oneroster", sso_provider="Clever"
            ).token,
            "School upload": create_connection(session, system, "School upload", "csv").token,
        }
        tenant_id = tenant.id
    return Tenancy(database, box, tenant_id, tokens)


@pytest.fixture
def prepared_always(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write phase on a SQLite file is prepared on a copy, however short (tests of the
    prepared path hold imports of a few hundred rows: below ``PREPARE_FROM_ROWS``)."""
    monkeypatch.setattr(prepared, "PREPARE_FROM_ROWS", 0)


@pytest.fixture
def client(settings, tenancy) -> Iterator[TestClient]:
    """The app over HTTP, on the tenancy's database."""
    with TestClient(create_app(settings, database=tenancy.database)) as client:
        yield client


@pytest.fixture
def admin_token(tenancy: Tenancy) -> str:
    """A district admin's staff API token in the tenancy."""
    with tenancy.database.session() as session:
        actor = system_actor(tenancy.tenant_id)
        made = staff.create_staff(session, actor, "boss", "district_admin", password=None)
        return staff.create_staff_token(session, made.staff, "api")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def statements(database: Database) -> Iterator[Callable[[], int]]:
    """Count the statements sent to the database inside the block."""
    sent = []

    def count(*args) -> None:
        sent.append(args[2])

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield lambda: len(sent)
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


@contextmanager
def built(*models) -> Iterator[list]:
    """The ORM objects of ``models`` constructed inside the block."""
    made: list = []

    def count(target, *_) -> None:
        made.append(target)

    for model in models:
        event.listen(model, "init", count)
    try:
        yield made
    finally:
        for model in models:
            event.remove(model, "init", count)


@contextmanager
def loaded(*models) -> Iterator[list]:
    """The ORM objects of ``models`` loaded from the database inside the block."""
    made: list = []

    def count(target, *_) -> None:
        made.append(target)

    for model in models:
        event.listen(model, "load", count)
    try:
        yield made
    finally:
        for model in models:
            event.remove(model, "load", count)


@pytest.fixture
def read_rows(monkeypatch) -> list[tuple[str, str]]:
    """(file, sourcedId or row number) of every row the OneRoster reader looks at one by one:
    hashed to be compared with the stored hashes or translated."""
    rows: list[tuple[str, str]] = []
    sight, translate = Sighter.sight, oneroster_source.translate

    def sighting(self, cells, *args, **kwargs):
        rows.append((self.file, cells[self.columns.index("sourcedId")] if cells else ""))
        return sight(self, cells, *args, **kwargs)

    def translating(row, *args, **kwargs):
        rows.append((row.file, str(row.number)))
        return translate(row, *args, **kwargs)

    monkeypatch.setattr(Sighter, "sight", sighting)
    monkeypatch.setattr(oneroster_source, "translate", translating)
    return rows
