"""Real ``rollcall`` processes on loopback, for the operations tests: the CLI as an operator
runs it, against the test database, with its log stream kept for inspection."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.imports.conftest import tenancy  # noqa: F401 (the SIS tenant of import tests, shared)
from tests.live import Process, rollcall_environment, start_rollcall
from tests.web.conftest import app, district  # noqa: F401 (the small district, shared)


@pytest.fixture
def environment(database, database_url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of an operator's ``rollcall`` process on the test database."""
    return rollcall_environment(database_url, tmp_path / "data")


@pytest.fixture
def rollcall_process(environment: dict[str, str], tmp_path: Path) -> Iterator:
    """Start ``rollcall ARGS…`` (``serve`` is handed a bound socket and waited for); all are
    stopped at the end of the test."""
    started: list[Process] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Process:
        process = start_rollcall(*args, env={**environment, **(env or {})}, folder=tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(timeout=20)


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

    @property
    def url(self) -> str:
        """Over its Unix socket in ``folder`` (no TCP port to race other processes for)."""
        return f"postgresql+psycopg://postgres@/postgres?host={self.folder}"

    def ctl(self, *args: str) -> None:
        _as_postgres(["pg_ctl", "-D", str(self.folder / "data"), "-w", *args])

    def start(self) -> None:
        options = f"-k {self.folder} -c listen_addresses='' -c fsync=off"
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
    server = Postgres(folder)
    server.start()
    yield server
    _as_postgres(["pg_ctl", "-D", str(folder / "data"), "-m", "immediate", "stop"], check=False)
    shutil.rmtree(folder, ignore_errors=True)
