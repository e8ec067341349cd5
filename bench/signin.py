"""Sign-in: authorization-code exchanges per second, and one Argon2id verification.

    python -m bench.signin [--codes 600]

Registers an OIDC client (confidential, one redirect URI), an API client and a student in a
fresh SQLite database, stores ``--codes`` authorization codes for the student through
``server.domain.authorization.save_code`` (what ``/authorize`` does once the student has signed
in), serves with ``rollcall serve --no-worker`` and has one client keep 8 requests in flight on
``POST /oauth/token``: each code exchanged once (``grant_type=authorization_code``: ID token,
access and refresh token), against client-credentials token requests (the same endpoint
without a code or a user) as the baseline. Then one verification of an Argon2id hash made with
Rollcall's parameters (``server.domain.passwords``), against argon2-cffi's default parameters.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from bench.figures import Figure
from bench.servers import drive, free_port, rollcall_command, serving

REDIRECT = "http://127.0.0.1:9/callback"


def prepare(url: str, codes: int) -> dict:
    """The clients, the student and ``codes`` fresh authorization codes."""
    from server.db.base import utcnow
    from server.db.migrate import upgrade
    from server.db.oauth import OAuthClientKind
    from server.db.session import Database
    from server.domain import authorization, oauth, users
    from server.domain.actors import system_actor
    from server.domain.tenants import create_tenant

    database = Database(url)
    upgrade(database.engine)
    with database.session() as session:
        tenant = create_tenant(session, "Bench District")
        actor = system_actor(tenant.id)
        oidc = oauth.create_client(session, actor, "bench app", redirect_uris=[REDIRECT])
        api = oauth.create_client(session, actor, "bench reader", kind=OAuthClientKind.API)
        student = users.create_user(
            session, actor, {"username": "bench.student", "given_name": "Bench"}
        )
        issued = []
        for _ in range(codes):
            code = secrets.token_urlsafe(32)
            request = authorization.CodeRequest(
                redirect_uri=REDIRECT,
                scope="openid profile",
                nonce=None,
                code_challenge=None,
                code_challenge_method=None,
                auth_time=utcnow(),
            )
            authorization.save_code(session, oidc.client, student, code, request)
            issued.append(code)
        found = {
            "oidc": (oidc.client.client_id, oidc.secret or ""),
            "api": (api.client.client_id, api.secret or ""),
            "codes": issued,
        }
    database.dispose()
    return found


def exchange_rates(codes: int) -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/rollcall.sqlite3"
        setup = prepare(url, codes)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "ROLLCALL_DATABASE_URL": url,
            "ROLLCALL_DATA_DIR": scratch,
            "ROLLCALL_SECRET_KEY": "bench-signin-secret",
            "ROLLCALL_ISSUER": base,
        }
        command = rollcall_command(
            "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)
        )
        with serving(command, f"{base}/healthz", Path(scratch) / "serve.log", env):
            oidc_auth, api_auth = setup["oidc"], setup["api"]
            codes_list = setup["codes"]

            def exchange(client: httpx.AsyncClient, k: int):
                form = {"grant_type": "authorization_code", "code": codes_list[k]}
                form["redirect_uri"] = REDIRECT
                return client.post("/oauth/token", data=form, auth=oidc_auth)

            def client_credentials(client: httpx.AsyncClient, k: int):
                form = {"grant_type": "client_credentials"}
                return client.post("/oauth/token", data=form, auth=api_auth)

            baseline = drive(base, {}, client_credentials, len(codes_list))
            measured = drive(base, {}, exchange, len(codes_list))
    details = {
        "requests": len(codes_list),
        "concurrency": 8,
        "p99_ms": round(measured.p99_ms, 1),
        "errors": len(measured.errors),
        "first_errors": measured.errors[:3],
        "baseline_errors": len(baseline.errors),
    }
    return [
        Figure(
            "signin",
            "authorization-code exchange",
            round(measured.per_second, 1),
            "req/s",
            round(baseline.per_second, 1),
            "client-credentials token",
            details=details,
        )
    ]


def verification_ms(hasher: PasswordHasher, repeats: int = 9) -> float:
    hashed = hasher.hash("correct horse battery staple")
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        hasher.verify(hashed, "correct horse battery staple")
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def argon2_figure() -> Figure:
    from server.domain import passwords

    ours = passwords.hash_password("correct horse battery staple")
    timings = []
    for _ in range(9):
        started = time.perf_counter()
        passwords.verify_password(ours, "correct horse battery staple")
        timings.append((time.perf_counter() - started) * 1000)
    return Figure(
        "signin",
        "one Argon2id verification (Rollcall's parameters)",
        round(statistics.median(timings), 1),
        "ms",
        round(verification_ms(PasswordHasher()), 1),
        "argon2-cffi defaults t=3 m=64MiB p=4",
        better="lower",
        details={"hash_prefix": ours.split("$")[3] if ours.count("$") > 3 else ""},
    )


def main(argv: list[str] | None = None, quick: bool = False) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench.signin")
    parser.add_argument("--codes", type=int, default=None)
    parser.add_argument("--quick", action="store_true", default=quick)
    args = parser.parse_args(argv)
    codes = args.codes or (200 if args.quick else 1000)
    return [*exchange_rates(codes), argon2_figure()]


if __name__ == "__main__":
    from bench.figures import table

    found = main()
    print(table(found))
    for figure in found:
        print(figure.json_line())
