"""Pulling from an upstream OneRoster API: a second Rollcall on 127.0.0.1 plays the district hub.

The upstream has its own SQLite database with the demo district (64 users) and an API client;
the test database gets a tenant and a oneroster_rest connection pointing at it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import oneroster.oauth1
from server.app import create_app
from server.context import AppContext
from server.db import Connection, Enrollment, Job, SchoolClass, User
from server.domain import jobs, users
from server.domain.actors import system_actor
from server.domain.connections import get_connection
from server.domain.import_limits import ImportLimits
from server.domain.staff import create_staff
from server.domain.tenants import create_tenant
from server.imports.engine import ImportOptions
from server.imports.pull import enqueue_due_syncs, pull
from server.worker import runners
from tests.imports.hubs import (
    FAST,
    V1P1,
    V1P2,
    FakeHub,
    Here,
    connect,
    one_1p1_school,
)
from tests.live import serving
from tests.web.conftest import csrf_of, sign_in


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

    again = here.sync(mode="full")
    assert again.status == "applied" and again.mode == "full"
    assert set(again.counts()["outcomes"]) == {"unchanged"}, again.summary


def test_a_trial_sync_writes_nothing(here):
    report = here.sync(dry_run=True)
    assert report.status == "valid", report.summary
    assert report.outcomes["created"] > 64
    assert here.active(User) == set()


def test_users_deactivated_at_the_hub_are_deactivated_here_under_the_shrink_guard(here, hub):
    assert here.sync().status == "applied"
    hub.deactivate("student-school-maple-3")
    report = here.sync(mode="full")
    assert report.status == "applied", report.summary
    deactivated = [(r["file"], r["key"]) for r in report.rows() if r["code"] == "W201"]
    assert ("users.csv", "student-school-maple-3") in deactivated
    assert [file for file, _ in deactivated] == ["users.csv", "enrollments.csv"]  # and her class
    assert "student-school-maple-3" not in here.active(User)

    hub.deactivate(*[f"student-school-cedar-{n}" for n in range(1, 31)])
    refused = here.sync(mode="full")
    assert refused.status == "refused"
    assert refused.shrink["tripped"] and "shrink guard" in refused.summary
    assert len(here.active(User)) == 63
    allowed = here.sync(mode="full", allow_shrink=True)
    assert allowed.status == "applied"
    assert len(here.active(User)) == 33


def test_a_wrong_secret_gives_a_clear_refusal_not_a_traceback(context, hub):
    here = connect(context, hub.url, hub.demo.oneroster_client_id, "not-the-secret")
    report = here.sync()
    assert report.status == "failed"
    assert "refused the client credentials" in report.summary
    assert report.codes["F004"] == 1
    assert here.active(User) == set()


def test_a_pull_reads_within_the_import_limits(context, hub):
    """A hub that answers pages larger than the limit (or rows past it) is refused, F018/F017."""
    small_pages = replace(context.settings, import_limits=ImportLimits(page_bytes=2000))
    here = connect(
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


def _fake_hub_connection(context, base: str) -> str:
    """A tenant with a "District hub" connection pulling from the fake hub at ``base``."""
    return connect(context, base, "c", "s", token_url="/token").tenant_id


def test_a_busy_upstream_is_retried_after_the_time_it_asks_for(context):
    fake = FakeHub()
    with serving(fake.app()) as base:
        tenant_id = _fake_hub_connection(context, base)
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


def test_an_upstream_answering_json_nested_too_deep_is_reported(context):
    # Found by hand (issue 11 re-check): json.loads raised RecursionError, not ValueError,
    # so the pull crashed instead of reporting the upstream.
    fake = FakeHub()
    fake.nested_users = True
    with serving(fake.app()) as base:
        tenant_id = _fake_hub_connection(context, base)
        report = pull(
            context, tenant_id, "District hub", ImportOptions(), policy=FAST, sleep=lambda s: None
        )
        assert report.status == "failed"
        assert "did not answer a OneRoster 'users' list" in report.summary


def test_an_upstream_that_is_not_a_oneroster_api_is_reported(context, hub):
    here = connect(
        context,
        hub.url + "/not-oneroster",
        hub.demo.oneroster_client_id,
        hub.demo.oneroster_client_secret,
    )
    report = here.sync()
    assert report.status == "failed"
    assert "answered HTTP 404" in report.summary


def test_an_unreachable_upstream_is_reported(context, dead_url):
    here = connect(context, dead_url, "c", "s")
    report = here.sync()
    assert report.status == "failed"
    assert "cannot be reached" in report.summary


def test_the_schedule_queues_one_sync_per_due_connection_and_the_worker_runs_it(context, hub):
    here = connect(
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


def _pulled(here: Here, sourced_id: str) -> dict[str, object]:
    with here.context.database.session() as session:
        user = users.find_by_sourced_id(session, here.tenant_id, sourced_id)
        return {
            "given_name": user.given_name,
            "primary_role": user.primary_role,
            "role_types": {r.role_type for r in user.roles},
        }


def test_a_1p1_hub_that_signs_with_oauth1_is_pulled_into_the_same_roster(context, hub):
    # OneRoster 1.1 consumers sign with OAuth 1.0a and no token endpoint (REFERENCES.md: "1.1
    # consumers (ClassLink among them) sign requests with OAuth 1.0a"); the hub is Rollcall's
    # own 1.1 surface, which checks the HMAC-SHA256 signature over every query parameter.
    secret = hub.consumer_secret()
    here = connect(
        context, hub.url, hub.demo.oneroster_client_id, secret, path=V1P1, token_url=None
    )
    report = here.sync()
    assert report.status == "applied", report.summary
    assert report.format == "oneroster-1.1-rest"  # detected from the /v1p1 base
    assert here.active(User) == hub.active(User) and len(hub.active(User)) == 64
    assert here.active(SchoolClass) == hub.active(SchoolClass)
    assert here.active(Enrollment) == hub.active(Enrollment)
    teacher = _pulled(here, "teacher-school-maple-1")
    assert teacher["primary_role"] == "teacher"  # 1.1 `role` + `orgs`: a role at the school
    assert teacher["role_types"] == {"primary"}

    hub.rename("student-school-maple-3", "Renamed")  # a delta: the filter is signed too
    delta = here.sync()
    assert delta.status == "applied" and delta.mode == "delta", delta.summary
    assert _pulled(here, "student-school-maple-3")["given_name"] == "Renamed"


def test_a_wrong_consumer_secret_is_refused_clearly(context, hub):
    hub.consumer_secret()
    here = connect(
        context, hub.url, hub.demo.oneroster_client_id, "not-it", path=V1P1, token_url=None
    )
    report = here.sync()
    assert report.status == "failed"
    assert "refused the OAuth 1.0a signature" in report.summary
    assert here.active(User) == set()


def test_after_a_full_pull_a_delta_changes_exactly_what_changed_upstream(here, hub):
    first = here.sync()
    assert first.status == "applied" and first.mode == "full"
    hub.rename("student-school-maple-3", "Renamed")
    delta = here.sync()
    assert delta.status == "applied" and delta.mode == "delta", delta.summary
    changed = {(r["file"], r["key"], r["outcome"]) for r in delta.rows()}
    assert ("users.csv", "student-school-maple-3", "updated") in changed
    assert {key for _, key, outcome in changed if outcome != "unchanged"} == {
        "student-school-maple-3"
    }
    assert _pulled(here, "student-school-maple-3")["given_name"] == "Renamed"

    hub.deactivate("student-school-maple-4")  # a leaver the upstream marks tobedeleted
    with hub.database.session() as session:  # and one it drops outright
        user = users.find_by_sourced_id(session, hub.tenant_id, "student-school-maple-5")
        users.delete_user(session, system_actor(hub.tenant_id, "hub admin"), user, override=True)
    quiet = here.sync()
    assert quiet.mode == "delta"
    assert "student-school-maple-5" in here.active(User)  # a delta cannot see who vanished
    full = here.sync(mode="full")
    assert full.status == "applied" and full.mode == "full", full.summary
    assert "student-school-maple-5" not in here.active(User)
    assert "student-school-maple-4" not in here.active(User)


def test_a_full_pull_runs_again_once_its_schedule_is_due(context, hub):
    here = connect(
        context, hub.url, hub.demo.oneroster_client_id, hub.demo.oneroster_client_secret,
        full_every_hours=1,
    )  # fmt: skip
    assert here.sync().mode == "full"
    assert here.sync().mode == "delta"
    with context.database.session() as session:
        connection = session.scalars(select(Connection).where(Connection.name == "District hub"))
        connection = connection.one()
        state = dict(connection.settings["pull"])
        state["last_full_at"] = "2000-01-01T00:00:00+00:00"  # the last full pull is old
        connection.settings = {**connection.settings, "pull": state}
    assert here.sync().mode == "full"


def test_admin_adds_a_1p1_oauth1_pull_from_the_command_line_and_sets_its_full_schedule(
    rollcall, hub
):
    secret = hub.consumer_secret()
    code, out, err = rollcall(
        "connection", "add", "Hub 1.1", "--kind", "oneroster_rest", "--upstream",
        f"{hub.url}{V1P1}", "--version", "1.1", "--oauth1", "--client-id",
        hub.demo.oneroster_client_id, "--client-secret-stdin", "--json", stdin=secret + "\n",
    )  # fmt: skip
    assert code == 0, err
    assert secret not in out
    code, out, err = rollcall("sync", "Hub 1.1", "--json")
    assert code == 0, out + err
    assert json.loads(out)["status"] == "applied" and json.loads(out)["mode"] == "full"
    code, out, _ = rollcall("sync", "Hub 1.1", "--json")
    assert code == 0 and json.loads(out)["mode"] == "delta"
    code, out, _ = rollcall("sync", "Hub 1.1", "--full", "--json")
    assert code == 0 and json.loads(out)["mode"] == "full"

    code, out, err = rollcall("connection", "set", "Hub 1.1", "--full-every", "7d", "--json")
    assert code == 0, err
    code, _, err = rollcall("connection", "set", "Hub 1.1", "--full-every", "soon")
    assert code == 2 and "--full-every" in err  # argparse refuses it before any work
    code, out, _ = rollcall("sync", "Hub 1.1", "--json")  # the secret was kept
    assert code == 0 and json.loads(out)["status"] == "applied", out

    code, _, err = rollcall(
        "connection", "add", "Half", "--kind", "oneroster_rest", "--upstream", hub.url,
        "--client-id", "x", "--client-secret-stdin", stdin="s\n",
    )  # fmt: skip
    assert code == 2 and "--oauth1" in err


def test_district_admin_sets_up_and_edits_a_1p1_pull_in_the_staff_app(context, settings, hub):
    with context.database.session() as session:
        tenant = create_tenant(session, "Pulled District")
        admin = create_staff(session, system_actor(tenant.id), "skinner", "district_admin")
        tenant_id = tenant.id
    secret = hub.consumer_secret()
    client = sign_in(create_app(settings, database=context.database), "skinner", admin.password)
    page = client.get("/admin/connections")
    assert 'name="upstream"' in page.text and 'name="client_secret"' in page.text
    added = client.post(
        "/admin/connections",
        data={
            "csrf_token": csrf_of(page.text), "name": "District hub", "kind": "oneroster_rest",
            "upstream": f"{hub.url}{V1P1}", "version": "", "auth": "oauth1", "token_url": "",
            "client_id": hub.demo.oneroster_client_id, "client_secret": secret,
            "every": "60", "full_every": "",
        },
    )  # fmt: skip
    assert added.status_code == 200, added.text
    assert "Connection District hub added." in added.text
    assert secret not in added.text and "stored; leave empty to keep it" in added.text
    here = Here(context, tenant_id)
    report = here.sync()
    assert report.status == "applied" and report.format == "oneroster-1.1-rest", report.summary

    edited = client.post(
        "/admin/connections/District%20hub/source",
        data={
            "csrf_token": csrf_of(added.text), "upstream": f"{hub.url}{V1P1}", "version": "1.1",
            "auth": "oauth1", "client_id": hub.demo.oneroster_client_id, "client_secret": "",
            "every": "30", "full_every": "168",
        },
    )  # fmt: skip
    assert "Connection District hub updated." in edited.text
    assert "Deltas ask for changes after" in edited.text
    with context.database.session() as session:
        stored = get_connection(session, tenant_id, "District hub").settings["upstream"]
        assert (stored["every_minutes"], stored["full_every_hours"], stored["version"]) == (
            30, 168, "1.1",
        )  # fmt: skip
    assert here.sync().status == "applied"  # the blank secret field kept the stored secret

    wrong = client.post(
        "/admin/connections/District%20hub/source",
        data={
            "csrf_token": csrf_of(edited.text), "upstream": "ftp://hub", "auth": "oauth1",
            "client_id": "x", "every": "often",
        },
    )  # fmt: skip
    assert wrong.status_code == 400 and "whole number" in wrong.text


def test_a_base_url_without_a_version_is_probed_for_the_api_under_it(context, hub):
    # The standard paths: 1.2 Rostering under …/rostering/v1p2, 1.1 under …/v1p1 (REFERENCES.md).
    secret = hub.consumer_secret()
    signed = connect(
        context, hub.url, hub.demo.oneroster_client_id, secret,
        path="/ims/oneroster", token_url=None,
    )  # fmt: skip
    report = signed.sync()  # 1.2 refuses OAuth 1.0a signatures here, so 1.1 is the one
    assert report.status == "applied", report.summary
    assert report.format == "oneroster-1.1-rest"
    assert report.source_name == f"{hub.url}{V1P1}"
    assert len(signed.active(User)) == 64


def test_1p1_shapes_with_string_booleans_in_any_case_land_as_the_same_roster(context):
    served = one_1p1_school()
    signed: list[oneroster.oauth1.SignedRequest] = []

    async def listing(request: Request) -> JSONResponse:
        name = request.path_params["collection"]
        url = str(request.url).split("?")[0]
        query = list(request.query_params.multi_items())
        signed.append(oneroster.oauth1.parse("GET", url, request.headers["authorization"], query))
        body = served.get(name, [])
        return JSONResponse({name: body}, headers={"X-Total-Count": str(len(body))})

    app = Starlette(routes=[Route(V1P1 + "/{collection}", listing)])
    with serving(app) as base:
        here = connect(context, base, "key", "secret", path=V1P1, token_url=None)
        report = here.sync()
        assert report.status == "applied", [r for r in report.rows() if r["code"]]
        assert report.format == "oneroster-1.1-rest"
        assert not [r for r in report.rows() if r["code"] in ("W203", "R102")]
        assert here.active(User) == {"u1", "u2", "u4"}  # `inactive` reads as tobedeleted
        assert _pulled(here, "u2")["primary_role"] == "teacher"
        with context.database.session() as session:
            primary = {
                key: (role, flag)
                for key, role, flag in session.execute(
                    select(Enrollment.sourced_id, Enrollment.role, Enrollment.primary).where(
                        Enrollment.tenant_id == here.tenant_id
                    )
                ).all()
            }
        assert primary == {"e1": ("student", False), "e2": ("teacher", True), "e3": ("aide", False)}
        # RFC 5849 §3.4 with SHA-256, over every query parameter (limit, offset, sort)
        assert {r.oauth["oauth_signature_method"] for r in signed} == {"HMAC-SHA256"}
        assert all(oneroster.oauth1.verify(r, "secret") for r in signed)
        assert {"limit", "offset", "sort"} <= {k for k, _ in signed[0].params}


# --- issue 13 defects 3 and 8: one walk of an upstream at a time; refused syncs are failures --


def _connection_id(context: AppContext) -> str:
    with context.database.session() as session:
        return session.scalars(select(Connection.id).where(Connection.name == "District hub")).one()


def test_a_pull_while_another_walks_the_same_upstream_is_refused(here):
    from server.domain.leases import pull_lease
    from server.errors import Conflict

    with pull_lease(here.context.database, _connection_id(here.context)):  # another process
        with pytest.raises(Conflict, match="Another pull of this connection is running"):
            here.sync()
        assert here.active(User) == set()
    assert here.sync().status == "applied"  # free again once the other pull ended


def test_a_refused_scheduled_sync_fails_its_job_with_the_reason_and_logs_it(context, hub, caplog):
    connect(context, hub.url, hub.demo.oneroster_client_id, "not-the-secret", every_minutes=60)
    with context.database.session() as session:
        assert enqueue_due_syncs(session) == 1
    with caplog.at_level("WARNING", logger="rollcall.jobs"):
        assert jobs.run_due(context.database, runners(context)) == 1
    with context.database.session() as session:
        job = session.scalars(select(Job).where(Job.kind == "sync")).one()
        assert job.status == "failed"
        assert "refused the client credentials" in job.last_error
    [logged] = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert logged.kind == "sync" and "refused the client credentials" in logged.reason
