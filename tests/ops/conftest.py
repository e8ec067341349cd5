"""Real ``rollcall`` processes on loopback, for the operations tests: the CLI as an operator
runs it, against the test database, with its log stream kept for inspection."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET
from tests.imports.conftest import tenancy  # noqa: F401 (the SIS tenant of import tests, shared)
from tests.web.conftest import app, district  # noqa: F401 (the small district, shared)

ROOT = Path(__file__).parent.parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Process:
    """A running ``rollcall`` command; ``log`` is its standard error so far."""

    popen: subprocess.Popen
    log_path: Path
    base: str = ""

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until_serving(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{self.base}/healthz", timeout=2)
                return
            except httpx.TransportError:
                if self.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"rollcall did not start:\n{self.log}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@pytest.fixture
def environment(database, database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of an operator's ``rollcall`` process on the test database."""
    env = {
        **os.environ,
        "ROLLCALL_DATA_DIR": str(tmp_path / "data"),
        "ROLLCALL_DATABASE_URL": database_url,
        "ROLLCALL_SECRET_KEY": TEST_SECRET,
    }
    return env


@pytest.fixture
def rollcall(environment: dict[str, str], tmp_path: Path) -> Iterator:
    """Start ``rollcall ARGS…`` (``serve`` gets a free port and is waited for); all are stopped
    at the end of the test."""
    started: list[Process] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Process:
        argv = list(args)
        port = None
        if argv[0] == "serve":
            port = free_port()
            argv += ["--port", str(port)]
        log_path = tmp_path / f"rollcall-{len(started)}.log"
        popen = subprocess.Popen(
            [sys.executable, "-m", "server.cli.main", *argv],
            env={**environment, **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("wb"),
            cwd=ROOT,
        )
        process = Process(popen, log_path, f"http://127.0.0.1:{port}" if port else "")
        started.append(process)
        if port:
            process.wait_until_serving()
        return process

    yield start
    for process in started:
        process.stop()


def wait_for(predicate, timeout: float = 30, what: str = "the condition"):
    """Poll ``predicate`` until it returns something truthy (a process does work meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@dataclass
class Postgres:
    """A PostgreSQL server of the test's own, that the test may stop and start."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        _as_postgres(["pg_ctl", "-D", str(self.folder / "data"), "-w", *args])

    def start(self) -> None:
        options = f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.ctl("-l", str(self.folder / "postgres.log"), "-o", options, "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "stop")


def _as_postgres(argv: list[str], check: bool = True) -> None:
    if os.getuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def own_postgres() -> Iterator[Postgres]:
    """Run with PostgreSQL (``ROLLCALL_TEST_DATABASE_URL`` set): a fresh server of our own, so
    stopping it leaves the suite's database alone (as ``.ci/run`` starts its own)."""
    if not os.environ.get("ROLLCALL_TEST_DATABASE_URL"):
        pytest.skip("PostgreSQL outage tests run when ROLLCALL_TEST_DATABASE_URL is set")
    # not under pytest's temporary root: that is private to the test user, and PostgreSQL
    # refuses to run as root
    folder = Path(tempfile.mkdtemp(prefix="rollcall-own-pg-"))
    if os.getuid() == 0:
        subprocess.run(["chown", "postgres", str(folder)], check=True)
    _as_postgres(["initdb", "-D", str(folder / "data"), "-A", "trust", "-U", "postgres"])
    server = Postgres(folder, free_port())
    server.start()
    yield server
    _as_postgres(["pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "stop"], check=False)
    shutil.rmtree(folder, ignore_errors=True)
