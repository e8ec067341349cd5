"""``make run``: the demo district, and a real server process answering on loopback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from sqlalchemy import func, select

from server.db import Connection, CredentialState, User
from server.demo import load_or_seed
from server.domain.connections import authenticate_token
from server.domain.staff import authenticate_staff
from tests.live import start_rollcall


def test_demo_district_has_two_schools_sixty_students_and_clever_owns_half(context, tmp_path):
    with context.database.session() as session:
        demo = load_or_seed(session, context.box, tmp_path)
        again = load_or_seed(session, context.box, tmp_path)
        assert again == demo
        students = session.scalars(select(User).where(User.primary_role == "student")).all()
        teachers = session.scalar(
            select(func.count()).select_from(User).where(User.primary_role == "teacher")
        )
        owners = {u.connection.name for u in students}
        clever = [u for u in students if u.connection.name == "Clever"]
        assert len(students) == 60 and teachers == 4
        assert owners == {"Clever", "Manual"} and len(clever) == 30
        assert {u.credential.state for u in clever} == {CredentialState.SSO}
        states = {u.credential.state for u in students if u.connection.name == "Manual"}
        assert states == {CredentialState.ISSUED, CredentialState.PENDING}
        tenant_id = students[0].tenant_id
        assert authenticate_staff(session, tenant_id, "admin", demo.admin_password)
        assert authenticate_token(session, demo.scim_token).kind == "scim"
        assert session.scalars(select(Connection).where(Connection.name == "Clever")).one().sso


def _environment(database_url: str, data_dir: Path, *unset: str) -> dict[str, str]:
    env = {**os.environ, "ROLLCALL_DATA_DIR": str(data_dir), "ROLLCALL_DATABASE_URL": database_url}
    for name in unset:
        env.pop(name, None)
    return env


def test_serve_demo_prints_credentials_and_healthz_answers(database, database_url, tmp_path):
    env = _environment(database_url, tmp_path, "ROLLCALL_SECRET_KEY")
    server = start_rollcall("serve", "--demo", "--json", env=env, folder=tmp_path)
    try:
        base = server.url
        demo = json.loads((tmp_path / "demo-credentials.json").read_text())
        token = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(demo["oneroster_client_id"], demo["oneroster_client_secret"]),
        )
        assert token.status_code == 200, token.text
        roster = httpx.get(
            f"{base}/ims/oneroster/rostering/v1p2/users?limit=1",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert roster.status_code == 200 and roster.headers["x-total-count"] == "64"
    finally:
        server.stop(timeout=20)
    printed = json.loads(server.output.split('\n{"time"')[0])
    assert printed["admin"]["username"] == "admin" and printed["scim"]["token"].startswith("rc_")
    assert printed["url"] == base  # the address of the socket it was handed
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    for line in server.log.splitlines():
        entry = json.loads(line)
        assert printed["scim"]["token"] not in line and "level" in entry


def test_serve_without_an_issuer_prints_its_own_address(database, database_url, tmp_path):
    """Issue 14, item 1: no ROLLCALL_ISSUER means the address served, not :8000 (here the
    socket handed over with ``--fd``)."""
    env = _environment(database_url, tmp_path, "ROLLCALL_ISSUER")
    server = start_rollcall("serve", env=env, folder=tmp_path)
    try:
        base = server.url
        discovery = httpx.get(f"{base}/.well-known/openid-configuration").json()
    finally:
        server.stop(timeout=20)
    assert discovery["issuer"] == base
    assert discovery["authorization_endpoint"] == f"{base}/oauth/authorize"
