"""Real servers on 127.0.0.1 for the tests that need real HTTP: an app under uvicorn in a
thread (``serving``) or a ``rollcall`` process (``start_rollcall``).

Every server gets a socket this module has already bound and hands over (uvicorn's
``sockets=[…]``, ``rollcall serve --fd N``): no other process can take the port between
choosing it and serving on it, which is the race of "find a free port, then bind it".
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from starlette.types import ASGIApp

from server.cli.serve import SERVER_OPTIONS

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90  # seconds: generous, two cores are shared with other test runs


def bound_socket() -> socket.socket:
    """A TCP socket bound to a port of 127.0.0.1 chosen by the kernel (not yet listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://127.0.0.1:PORT`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextmanager
def dead_address() -> Iterator[str]:
    """The URL of a port that is held (bound, never listening) so nothing answers on it: a
    connection is refused for as long as the block runs."""
    with bound_socket() as sock:
        yield url_of(sock)


@contextmanager
def serving(app: ASGIApp, sock: socket.socket | None = None) -> Iterator[str]:
    """Serve ``app`` on ``sock`` (a fresh ``bound_socket()`` by default) with the options
    ``rollcall serve`` uses and its lifespan, until the block ends; yields the base URL.

    Bind first when the app must know its own address before it starts::

        sock = bound_socket()
        with serving(create_app(replace(settings, issuer=url_of(sock))), sock) as base: ...
    """
    sock = sock or bound_socket()
    options = {**SERVER_OPTIONS, "log_config": uvicorn.config.LOGGING_CONFIG}
    config = uvicorn.Config(app, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@dataclass
class Process:
    """A running ``rollcall`` command. ``url`` is the address ``serve`` answers on; ``log`` and
    ``output`` are its standard error and output so far."""

    popen: subprocess.Popen
    log_path: Path
    output_path: Path
    url: str = ""
    sock: socket.socket | None = field(default=None, repr=False)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def peak_rss_mib(self) -> float:
        """The process's peak resident memory so far (Linux ``VmHWM``), in MiB."""
        status = Path(f"/proc/{self.popen.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
        return int(kib) / 1024

    def wait_until_serving(self, timeout: float = START_TIMEOUT) -> None:
        """Return once ``/healthz`` answers; fail with the log if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=5)
                return
            except httpx.TransportError:
                if self.popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"rollcall did not start:\n{self.log}") from None
                time.sleep(0.1)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; releases the socket."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.sock is not None:
            self.sock.close()


def start_rollcall(*argv: str, env: dict[str, str], folder: Path) -> Process:
    """Start ``rollcall ARGV…`` with ``env`` (its output and log go to files in ``folder``).

    ``serve`` is handed a socket bound here (``--fd``) and is waited for until it answers.
    """
    args = list(argv)
    sock = None
    if args[0] == "serve":
        sock = bound_socket()
        sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
        args += ["--fd", str(sock.fileno())]
    name = f"rollcall-{time.monotonic_ns()}"
    log_path, output_path = folder / f"{name}.log", folder / f"{name}.out"
    with log_path.open("wb") as log, output_path.open("wb") as out:
        popen = subprocess.Popen(
            [sys.executable, "-m", "server.cli.main", *args],
            env=env,
            stdout=out,
            stderr=log,
            cwd=ROOT,
            pass_fds=[sock.fileno()] if sock else [],
        )
    process = Process(popen, log_path, output_path, url_of(sock) if sock else "", sock)
    if sock is not None:
        try:
            process.wait_until_serving()
        except BaseException:
            process.stop()
            raise
    return process


def rollcall_environment(database_url: str, data_dir: Path, **env: str) -> dict[str, str]:
    """The environment of an operator's ``rollcall`` on the test database."""
    from tests.conftest import TEST_SECRET  # here: tests.conftest imports this module

    return {
        **os.environ,
        "ROLLCALL_DATA_DIR": str(data_dir),
        "ROLLCALL_DATABASE_URL": database_url,
        "ROLLCALL_SECRET_KEY": TEST_SECRET,
        **env,
    }


@contextmanager
def rollcall_serve(database_url: str, data_dir: Path, **env: str) -> Iterator[Process]:
    """``rollcall serve`` on the test database until the block ends (then SIGTERM)."""
    environment = rollcall_environment(database_url, data_dir, **env)
    process = start_rollcall("serve", env=environment, folder=data_dir)
    try:
        yield process
    finally:
        process.stop()
