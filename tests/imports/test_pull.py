"""Pulling from an upstream OneRoster API: a second Rollcall on 127.0.0.1 plays the district hub.

The upstream has its own SQLite database with the demo district (64 users) and an API client;
the test database gets a tenant and a oneroster_rest connection pointing at it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.app import create_app
from server.cli.main import main
from server.config import Settings
from server.context import AppContext
from server.db import Connection, Enrollment, Job, RecordStatus, SchoolClass, User
from server.db.migrate import upgrade
from server.db.session import Database
from server.demo import DemoCredentials, seed
from server.domain import jobs, users
from server.domain.actors import system_actor
from server.domain.connections import create_connection, set_upstream
from server.domain.secrets import SecretBox
from server.domain.tenants import create_tenant, get_tenant
from server.imports.engine import ImportOptions
from server.imports.limits import ImportLimits
from server.imports.pull import RetryPolicy, enqueue_due_syncs, pull, upstream_box
from server.worker import runners
from tests.conftest import TEST_SECRET

V1P2 = "/ims/oneroster/rostering/v1p2"
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=2, total_wait=5, timeout=5)


def _serve(app) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the upstream did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class Hub:
    url: str
    database: Database
    demo: DemoCredentials
    tenant_id: str

    def active(self, model, **where) -> set[str]:
        with self.database.session() as session:
            query = select(model.sourced_id).where(
                model.tenant_id == self.tenant_id, model.status == RecordStatus.ACTIVE
            )
            for name, value in where.items():
                query = query.where(getattr(model, name) == value)
            return set(session.scalars(query))

    def deactivate(self, *sourced_ids: str) -> None:
        with self.database.session() as session:
            actor = system_actor(self.tenant_id, "hub admin")
            for sourced_id in sourced_ids:
                user = users.find_by_sourced_id(session, self.tenant_id, sourced_id)
                users.deactivate_user(session, actor, user, override=True)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    """A second Rollcall, with its own database, serving the demo district on loopback."""
    url = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    database = Database(url)
    upgrade(database.engine)
    settings = Settings(data_dir=tmp_path, database_url=url, secret_key="hub-secret-key")
    with database.session() as session:
        demo = seed(session, SecretBox("hub-secret-key"))
        tenant_id = get_tenant(session, demo.tenant).id
    for base in _serve(create_app(settings, database=database)):
        yield Hub(base, database, demo, tenant_id)
    database.dispose()


@dataclass
class Here:
    context: AppContext
    tenant_id: str

    def sync(self, **options):
        report = pull(
            self.context, self.tenant_id, "District hub", ImportOptions(**options), policy=FAST
        )
        report.as_dict()
        return report

    def active(self, model) -> set[str]:
        with self.context.database.session() as session:
            return set(
                session.scalars(
                    select(model.sourced_id).where(
                        model.tenant_id == self.tenant_id, model.status == RecordStatus.ACTIVE
                    )
                )
            )


def _connect(context: AppContext, base: str, client_id: str, secret: str, **extra) -> Here:
    with context.database.session() as session:
        tenant = create_tenant(session, "Pulled District")
        actor = system_actor(tenant.id, "test")
        issued = create_connection(session, actor, "District hub", "oneroster_rest")
        set_upstream(
            session,
            actor,
            issued.connection,
            box=upstream_box(context),
            base_url=f"{base}{V1P2}",
            token_url=f"{base}/oauth/token",
            client_id=client_id,
            client_secret=secret,
            **extra,
        )
        tenant_id = tenant.id
    return Here(context, tenant_id)


@pytest.fixture
def here(context: AppContext, hub: Hub) -> Here:
    return _connect(
        context, hub.url, hub.demo.oneroster_client_id, hub.demo.oneroster_client_secret
    )


def test_a_sync_reproduces_the_hubs_roster_and_a_second_one_changes_nothing(here, hub):
    report = here.sync()
    assert report.status == "applied", report.summary
    assert report.format == "oneroster-1.2-rest" and report.mode == "full"
    assert here.active(User) == hub.active(User) and len(hub.active(User)) == 64
    assert here.active(SchoolClass) == hub.active(SchoolClass)
    assert here.active(Enrollment) == hub.active(Enrollment)
    with here.context.database.session() as session:
        pulled = session.scalars(
            select(User).where(User.tenant_id == here.tenant_id, User.sourced_id.like("student-%"))
        ).first()
        assert pulled.connection.name == "District hub"
        assert pulled.birth_date is not None  # demographics came along
        connection = session.scalars(select(Connection).where(Connection.name == "District hub"))
        connection = connection.one()
        assert connection.last_sync_at is not None
        assert connection.last_sync_result.startswith("Applied")
        assert hub.demo.oneroster_client_secret not in json.dumps(connection.settings)

    again = here.sync()
    assert again.status == "applied"
    assert set(again.counts()["outcomes"]) == {"unchanged"}, again.summary


def test_a_trial_sync_writes_nothing(here):
    report = here.sync(dry_run=True)
    assert report.status == "valid", report.summary
    assert report.outcomes["created"] > 64
    assert here.active(User) == set()


def test_users_deactivated_at_the_hub_are_deactivated_here_under_the_shrink_guard(here, hub):
    assert here.sync().status == "applied"
    hub.deactivate("student-school-maple-3")
    report = here.sync()
    assert report.status == "applied", report.summary
    deactivated = [(r["file"], r["key"]) for r in report.rows() if r["code"] == "W201"]
    assert ("users.csv", "student-school-maple-3") in deactivated
    assert [file for file, _ in deactivated] == ["users.csv", "enrollments.csv"]  # and her class
    assert "student-school-maple-3" not in here.active(User)

    hub.deactivate(*[f"student-school-cedar-{n}" for n in range(1, 31)])
    refused = here.sync()
    assert refused.status == "refused"
    assert refused.shrink["tripped"] and "shrink guard" in refused.summary
    assert len(here.active(User)) == 63
    allowed = here.sync(allow_shrink=True)
    assert allowed.status == "applied"
    assert len(here.active(User)) == 33


def test_a_wrong_secret_gives_a_clear_refusal_not_a_traceback(context, hub):
    here = _connect(context, hub.url, hub.demo.oneroster_client_id, "not-the-secret")
    report = here.sync()
    assert report.status == "failed"
    assert "refused the client credentials" in report.summary
    assert report.codes["F004"] == 1
    assert here.active(User) == set()


def test_a_pull_reads_within_the_import_limits(context, hub):
    """A hub that answers pages larger than the limit (or rows past it) is refused, F018/F017."""
    small_pages = replace(context.settings, import_limits=ImportLimits(page_bytes=2000))
    here = _connect(
        replace(context, settings=small_pages),
        hub.url,
        hub.demo.oneroster_client_id,
        hub.demo.oneroster_client_secret,
    )
    report = here.sync()
    assert report.status == "failed" and report.codes["F018"] == 1
    assert "ROLLCALL_IMPORT_MAX_PAGE_BYTES" in report.summary
    assert here.active(User) == set()
    few_rows = replace(context.settings, import_limits=ImportLimits(rows=10))
    report = Here(replace(context, settings=few_rows), here.tenant_id).sync()
    assert report.status == "failed" and report.file_errors[0]["code"] == "F017"
    assert here.active(User) == set()


@pytest.fixture
def rollcall(monkeypatch, tmp_path, database_url, capsys):
    monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("ROLLCALL_SECRET_KEY", TEST_SECRET)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO(stdin))
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_admin_adds_a_pull_connection_and_syncs_it_from_the_command_line(rollcall, hub, database):
    base = hub.url
    code, out, err = rollcall(
        "connection", "add", "District hub", "--kind", "oneroster_rest",
        "--upstream", f"{base}{V1P2}", "--token-url", f"{base}/oauth/token",
        "--client-id", hub.demo.oneroster_client_id, "--client-secret-stdin", "--json",
        stdin=hub.demo.oneroster_client_secret + "\n",
    )  # fmt: skip
    assert code == 0, err
    assert hub.demo.oneroster_client_secret not in out
    assert json.loads(out)["upstream"] == f"{base}{V1P2}"
    code, out, _ = rollcall("sync", "District hub", "--dry-run", "--json")
    assert code == 0 and json.loads(out)["status"] == "valid"
    code, out, _ = rollcall("sync", "District hub", "--json")
    assert code == 0 and json.loads(out)["status"] == "applied"
    code, _, err = rollcall("sync", "Manual")
    assert code == 2 and "only oneroster_rest connections pull" in err

    code, out, err = rollcall(
        "connection", "add", "Wrong", "--kind", "oneroster_rest",
        "--upstream", f"{base}{V1P2}", "--token-url", f"{base}/oauth/token",
        "--client-id", hub.demo.oneroster_client_id, "--client-secret-stdin",
        stdin="wrong\n",
    )  # fmt: skip
    assert code == 0
    code, out, err = rollcall("sync", "Wrong")
    assert code == 1
    assert "refused the client credentials" in " ".join((out + err).split())
    assert "Traceback" not in out + err


class FakeHub:
    """A tiny OneRoster API that answers 429 (then 503) before serving one page of users."""

    def __init__(self) -> None:
        self.user_calls = 0
        self.always_busy = False

    def app(self) -> Starlette:
        async def token(request: Request) -> JSONResponse:
            return JSONResponse({"access_token": "t", "token_type": "Bearer", "expires_in": 60})

        async def listing(request: Request) -> JSONResponse:
            name = request.path_params["collection"]
            if name == "users":
                self.user_calls += 1
                if self.user_calls == 1 or self.always_busy:
                    return JSONResponse({}, status_code=429, headers={"Retry-After": "1"})
                if self.user_calls == 2:
                    return JSONResponse({}, status_code=503)
                body = [
                    {
                        "sourcedId": "u1",
                        "status": "active",
                        "enabledUser": "true",
                        "username": "ava.adams",
                        "givenName": "Ava",
                        "familyName": "Adams",
                        "roles": [
                            {"roleType": "primary", "role": "student", "org": {"sourcedId": "s"}}
                        ],
                        "primaryOrg": {"sourcedId": "s"},
                        "grades": ["03"],
                    }
                ]
            elif name == "orgs":
                body = [{"sourcedId": "s", "status": "active", "name": "School", "type": "school"}]
            else:
                body = []
            return JSONResponse({name: body}, headers={"X-Total-Count": str(len(body))})

        return Starlette(
            routes=[
                Route("/token", token, methods=["POST"]),
                Route(V1P2 + "/{collection}", listing),
            ]
        )


def test_a_busy_upstream_is_retried_after_the_time_it_asks_for(context):
    fake = FakeHub()
    for base in _serve(fake.app()):
        with context.database.session() as session:
            tenant = create_tenant(session, "Pulled District")
            actor = system_actor(tenant.id, "test")
            issued = create_connection(session, actor, "District hub", "oneroster_rest")
            set_upstream(
                session,
                actor,
                issued.connection,
                box=upstream_box(context),
                base_url=f"{base}{V1P2}",
                token_url=f"{base}/token",
                client_id="c",
                client_secret="s",
            )
            tenant_id = tenant.id
        waits: list[float] = []
        report = pull(
            context, tenant_id, "District hub", ImportOptions(), policy=FAST, sleep=waits.append
        )
        assert report.status == "applied", report.summary
        assert fake.user_calls == 3
        assert waits == [1.0, 0.02]  # Retry-After first, then exponential back-off

        fake.always_busy = True  # more 429s than the attempts allowed
        report = pull(
            context, tenant_id, "District hub", ImportOptions(), policy=FAST, sleep=lambda s: None
        )
        assert report.status == "failed"
        assert "HTTP 429" in report.summary


def test_an_upstream_that_is_not_a_oneroster_api_is_reported(context, hub):
    here = _connect(
        context,
        hub.url + "/not-oneroster",
        hub.demo.oneroster_client_id,
        hub.demo.oneroster_client_secret,
    )
    report = here.sync()
    assert report.status == "failed"
    assert "answered HTTP 404" in report.summary


def test_an_unreachable_upstream_is_reported(context):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    here = _connect(context, f"http://127.0.0.1:{port}", "c", "s")
    report = here.sync()
    assert report.status == "failed"
    assert "cannot be reached" in report.summary


def test_the_schedule_queues_one_sync_per_due_connection_and_the_worker_runs_it(context, hub):
    here = _connect(
        context,
        hub.url,
        hub.demo.oneroster_client_id,
        hub.demo.oneroster_client_secret,
        every_minutes=60,
    )
    database = context.database
    with database.session() as session:
        assert enqueue_due_syncs(session) == 1
    with database.session() as session:
        assert enqueue_due_syncs(session) == 0  # one is queued already
    assert jobs.run_due(database, runners(context)) == 1
    assert len(here.active(User)) == 64
    with database.session() as session:
        job = session.scalars(select(Job).where(Job.kind == "sync")).one()
        assert job.status == "done"
        assert enqueue_due_syncs(session) == 0  # synced just now: due again in an hour
