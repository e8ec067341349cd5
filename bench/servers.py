"""Servers under benchmark: started as their own processes on 127.0.0.1, stopped afterwards,
and the client that drives them (one httpx client, a fixed number of requests in flight)."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.load import free_port, percentile, rss_mib

__all__ = ["Run", "drive", "free_port", "rss_mib", "serving"]


@contextmanager
def serving(
    command: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """Run ``command`` until the block ends; it is ready once ``ready_url`` answers (< 500)."""
    with log.open("wb") as sink:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(
            command, env={**os.environ, **(env or {})}, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(process, ready_url, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen, url: str, log: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def rollcall_command(*args: str) -> list[str]:
    rollcall = Path(sys.executable).with_name("rollcall")
    base = [str(rollcall)] if rollcall.exists() else python_command("server.cli.main")
    return [*base, *args]


@dataclass
class Run:
    """What the client saw for one kind of request."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 0.99)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0


Request = Callable[[httpx.AsyncClient, int], Any]  # (client, request number) -> awaitable


async def _drive(
    base_url: str, headers: dict[str, str], request: Request, count: int, concurrency: int
) -> Run:
    run = Run()
    numbers = iter(range(count))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=60, limits=limits
    ) as client:

        async def worker() -> None:
            for number in numbers:
                started = time.perf_counter()
                try:
                    response = await request(client, number)
                except httpx.HTTPError as error:
                    run.errors.append(f"{type(error).__name__}: {error}")
                    continue
                run.latencies_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code >= 300:
                    run.errors.append(f"{response.status_code} {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        run.seconds = time.perf_counter() - started
    return run


def drive(
    base_url: str,
    headers: dict[str, str],
    request: Request,
    count: int,
    concurrency: int = 8,
) -> Run:
    """``count`` requests, ``concurrency`` of them in flight at any time, over one client."""
    return asyncio.run(_drive(base_url, headers, request, count, concurrency))
