"""Mixed load on two ``rollcall serve`` processes sharing one PostgreSQL database.

``python -m bench.load --database-url postgresql://… [--requests 20000] [--clients 50]``
(``make soak``; a short run is in ``tests/test_load.py``, which ``.ci/run`` runs against its
PostgreSQL). Without a PostgreSQL URL (argument, ``ROLLCALL_BENCH_DATABASE_URL`` or
``ROLLCALL_TEST_DATABASE_URL``) it prints why it skipped and exits 0.

The database gets a schema of its own (dropped at the end); the first process seeds the demo
district, the second reads its credentials. Then ``--clients`` asyncio clients (httpx) share a
fixed number of requests, alternating between the two processes, in a mix an identity provider,
a learning app and the OIDC machinery make: SCIM create / filter / PATCH / read of users,
OneRoster 1.2 pages of users and classes with a client-credentials token, OIDC discovery, JWKS,
token issue and introspection. Everything stays on 127.0.0.1.

It prints one JSON line: requests, errors (any unexpected status or transport error, with the
first few), p50/p99/max latency in ms, and each process's RSS after a warm-up round and at the
end. It exits 1 on any error or when a process grew by more than ``--max-growth`` (memory flat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from server.config import normalise_database_url

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
V1P2 = "/ims/oneroster/rostering/v1p2"


@dataclass
class Tally:
    """What the clients saw: one latency per request, and the unexpected answers."""

    wanted: int
    tag: str = "run"  # in the usernames the clients create, unique per tally
    issued: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def take(self) -> int | None:
        """The next request's number, or None once ``wanted`` were issued."""
        if self.issued >= self.wanted:
            return None
        self.issued += 1
        return self.issued


@dataclass
class Credentials:
    scim_token: str
    client_id: str
    client_secret: str


def postgres_url(given: str | None) -> str | None:
    url = (
        given
        or os.environ.get("ROLLCALL_BENCH_DATABASE_URL")
        or os.environ.get("ROLLCALL_TEST_DATABASE_URL")
    )
    if not url or not url.startswith("postgres"):
        return None
    return normalise_database_url(url)


@contextmanager
def own_schema(url: str) -> Iterator[str]:
    """A fresh schema for this run; yields the URL whose search_path points at it."""
    name = f"bench_load_{secrets.token_hex(4)}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {name}"))
    try:
        yield url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{name}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        engine.dispose()


def free_port() -> int:
    """A port that was free a moment ago (``bench.servers`` still uses it; this module binds
    its servers' sockets itself, see :func:`bound_socket`)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bound_socket() -> socket.socket:
    """A listening socket on a port of 127.0.0.1 the kernel chose, bound here and handed to
    the server (``--fd``): no other process can take the port between choosing and serving
    (the race of "find a free port, then bind it"; ``tests/live.py`` does the same)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    return sock


def start_server(url: str, data_dir: Path, sock: socket.socket, issuer: str) -> subprocess.Popen:
    """``rollcall serve --demo`` on ``sock`` (bound here), answering /healthz within 60 s."""
    port = sock.getsockname()[1]
    rollcall = Path(sys.executable).with_name("rollcall")
    command = [str(rollcall)] if rollcall.exists() else [sys.executable, "-m", "server.cli.main"]
    env = {
        **os.environ,
        "ROLLCALL_DATABASE_URL": url,
        "ROLLCALL_DATA_DIR": str(data_dir),
        "ROLLCALL_SECRET_KEY": "bench-load-secret",
        "ROLLCALL_ISSUER": issuer,
    }
    log = data_dir / f"serve-{port}.log"  # a file, not a pipe: a full pipe would stall the server
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "serve", "--demo", "--fd", str(sock.fileno())],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            pass_fds=[sock.fileno()],
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rollcall serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("rollcall serve did not answer /healthz within 60 s")


def server_complaints(data_dir: Path) -> list[str]:
    """The warning and error lines of both servers' logs (JSON lines, ``server.logs``)."""
    return [
        line[:400]
        for log in sorted(data_dir.glob("serve-*.log"))
        for line in log.read_text(errors="replace").splitlines()
        if '"level": "error"' in line or '"level": "warning"' in line
    ]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _timed(
    tally: Tally, request: asyncio.Future, expected: tuple[int, ...]
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await request
    except httpx.HTTPError as error:
        where = f"{error.request.method} {error.request.url}" if error.request else ""
        elapsed = (time.perf_counter() - started) * 1000
        tally.errors.append(f"{where} after {elapsed:.0f} ms: {type(error).__name__} {error}")
        return None
    tally.latencies.append((time.perf_counter() - started) * 1000)
    if response.status_code not in expected:
        where = f"{response.request.method} {response.request.url.path}"
        tally.errors.append(f"{where} -> {response.status_code} {response.text[:200]}")
        return None
    return response


async def client(number: int, bases: list[str], creds: Credentials, tally: Tally) -> None:
    """One client's loop: the mix below, round-robin, until the shared count is used up."""
    scim = {"Authorization": f"Bearer {creds.scim_token}"}
    basic = (creds.client_id, creds.client_secret)
    async with httpx.AsyncClient(timeout=30) as http:
        access, user_id, name = "", "", ""
        while (n := tally.take()) is not None:
            base = bases[n % 2]
            step = n % 9 if access else 7
            if step == 0 or (step in (1, 2) and not user_id):
                name = f"load-{tally.tag}-{number}-{n}"
                body = {"schemas": [USER], "userName": name, "name": {"givenName": "Load"}}
                made = await _timed(
                    tally, http.post(f"{base}/scim/v2/Users", json=body, headers=scim), (201,)
                )
                user_id = made.json()["id"] if made is not None else ""
            elif step == 1:
                query = {"filter": f'userName eq "{name}"'}
                await _timed(
                    tally, http.get(f"{base}/scim/v2/Users", params=query, headers=scim), (200,)
                )
            elif step == 2:
                change = {
                    "schemas": [PATCH],
                    "Operations": [{"op": "replace", "path": "displayName", "value": f"Load {n}"}],
                }
                await _timed(
                    tally,
                    http.patch(f"{base}/scim/v2/Users/{user_id}", json=change, headers=scim),
                    (200, 204),
                )
            elif step == 3:
                await _timed(
                    tally,
                    http.get(
                        f"{base}{V1P2}/users",
                        params={"limit": 20},
                        headers={"Authorization": f"Bearer {access}"},
                    ),
                    (200,),
                )
            elif step == 4:
                await _timed(
                    tally,
                    http.get(
                        f"{base}{V1P2}/classes", headers={"Authorization": f"Bearer {access}"}
                    ),
                    (200,),
                )
            elif step == 5:
                await _timed(tally, http.get(f"{base}/.well-known/openid-configuration"), (200,))
            elif step == 6:
                await _timed(tally, http.get(f"{base}/oauth/jwks"), (200,))
            elif step == 7:
                issued = await _timed(
                    tally,
                    http.post(
                        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=basic
                    ),
                    (200,),
                )
                access = issued.json()["access_token"] if issued is not None else access
            else:
                await _timed(
                    tally,
                    http.post(f"{base}/oauth/introspect", data={"token": access}, auth=basic),
                    (200,),
                )


async def drive(bases: list[str], creds: Credentials, clients: int, tally: Tally) -> None:
    await asyncio.gather(*(client(i, bases, creds, tally) for i in range(clients)))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def run(url: str, requests: int, clients: int, max_growth: float) -> dict:
    with (
        own_schema(url) as schema_url,
        tempfile.TemporaryDirectory() as data,
        bound_socket() as first,
        bound_socket() as second,
    ):
        ports = [first.getsockname()[1], second.getsockname()[1]]
        issuer = f"http://127.0.0.1:{ports[0]}"
        servers = [start_server(schema_url, Path(data), first, issuer)]
        try:
            servers.append(start_server(schema_url, Path(data), second, issuer))
            stored = json.loads((Path(data) / "demo-credentials.json").read_text())
            creds = Credentials(
                stored["scim_token"],
                stored["oneroster_client_id"],
                stored["oneroster_client_secret"],
            )
            bases = [f"http://127.0.0.1:{port}" for port in ports]
            warm = Tally(wanted=clients * 2 * 9, tag="warm")
            asyncio.run(drive(bases, creds, clients, warm))
            before = [rss_mib(s.pid) for s in servers]
            tally = Tally(wanted=requests)
            started = time.perf_counter()
            asyncio.run(drive(bases, creds, clients, tally))
            elapsed = time.perf_counter() - started
            after = [rss_mib(s.pid) for s in servers]
            complaints = server_complaints(Path(data))
        finally:
            for server in servers:
                server.terminate()
            for server in servers:
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    server.kill()
    errors = warm.errors + tally.errors
    growth = max(b - a for a, b in zip(before, after, strict=True))
    return {
        "benchmark": "load",
        "database": "postgresql",
        "processes": 2,
        "clients": clients,
        "requests": tally.issued,
        "errors": len(errors),
        "first_errors": errors[:5],
        "server_complaints": complaints[:5],
        "requests_per_s": round(tally.issued / elapsed, 1),
        "p50_ms": round(statistics.median(tally.latencies), 1) if tally.latencies else None,
        "p99_ms": round(percentile(tally.latencies, 0.99), 1),
        "max_ms": round(max(tally.latencies, default=0.0), 1),
        "rss_start_mib": [round(v, 1) for v in before],
        "rss_end_mib": [round(v, 1) for v in after],
        "rss_growth_mib": round(growth, 1),
        "memory_flat": growth <= max_growth,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database-url", help="PostgreSQL (the default: the environment's)")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--max-growth", type=float, default=40.0, help="MiB per process")
    args = parser.parse_args(argv)
    url = postgres_url(args.database_url)
    if url is None:
        reason = "needs PostgreSQL: set ROLLCALL_TEST_DATABASE_URL or pass --database-url"
        print(json.dumps({"benchmark": "load", "skipped": reason}))
        return 0
    result = run(url, args.requests, args.clients, args.max_growth)
    print(json.dumps(result))
    return 0 if result["errors"] == 0 and result["memory_flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
