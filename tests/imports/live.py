"""A real ``rollcall serve`` process on 127.0.0.1 for tests that need one (memory, signals)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    process: subprocess.Popen
    url: str

    def peak_rss_mib(self) -> float:
        """The process's peak resident memory so far (Linux ``VmHWM``), in MiB."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
        return int(kib) / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def rollcall_serve(database_url: str, data_dir: Path, **env: str) -> Iterator[Served]:
    """Run ``rollcall serve`` on the test database until the block ends (then SIGTERM)."""
    port = free_port()
    environment = {
        **os.environ,
        "ROLLCALL_DATA_DIR": str(data_dir),
        "ROLLCALL_DATABASE_URL": database_url,
        "ROLLCALL_SECRET_KEY": TEST_SECRET,
        **env,
    }
    log = (data_dir / "serve.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli.main", "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=log,
        cwd=ROOT,
    )
    served = Served(process, f"http://127.0.0.1:{port}")
    try:
        _wait_until_up(served)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


def _wait_until_up(served: Served) -> None:
    deadline = time.monotonic() + 60
    while True:
        if served.process.poll() is not None:
            raise RuntimeError("rollcall serve exited at start-up")
        try:
            httpx.get(f"{served.url}/healthz", timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
