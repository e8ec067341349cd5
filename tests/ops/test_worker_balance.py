"""``rollcall serve --workers N`` spreads clients' connections over its workers (issue 15).

A keep-alive connection stays with the worker that accepted it. With one socket shared by the
workers, the first to wake accepted every pending connection: 114 / 6 / 0 / 0 of 120 requests
by 4 workers in the worker benchmark. Each worker now listens on a socket of its own.

Counted from the requests each worker process records (prometheus-client's per-process files).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict

from server.cli.listeners import own_socket, reuse_port_socket
from tests.live import ROOT
from tests.ops.conftest import wait_for

WORKERS = 4
CONNECTIONS = 64


def answered_by_worker(metrics: Path) -> dict[int, float]:
    """Requests answered so far by each worker process (pid), from its counter file."""
    counts = {}
    for path in metrics.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        total = sum(
            value
            for key, value, *_ in values
            if json.loads(key)[1] == "rollcall_http_requests_total"
        )
        counts[int(path.stem.split("_")[1])] = total
    return counts


def ask_twice(connection: socket.socket) -> list[int]:
    """``GET /healthz`` twice on one open connection; the statuses."""
    statuses = []
    with connection, connection.makefile("rb") as answers:
        for _ in range(2):
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            statuses.append(int(answers.readline().split()[1]))
            length = 0
            while (line := answers.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answers.read(length)
    return statuses


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_workers_share_the_connections_of_many_clients(environment, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "server.cli.main", "serve", "--no-worker"]
    command += ["--workers", str(WORKERS), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, env=environment, stdout=sink, stderr=sink, cwd=ROOT)
    try:
        wait_for(
            lambda: log.read_text().count("Application startup complete") >= WORKERS,
            timeout=600,  # four workers importing the app on a loaded machine
            what="every worker to start",
        )
        # the clients connect together (as a client's connection pool does when a burst of
        # requests begins), then each asks twice over its keep-alive connection
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        with ThreadPoolExecutor(16) as pool:
            statuses = [s for answer in pool.map(ask_twice, connections) for s in answer]
    finally:
        server.terminate()
        server.wait(timeout=60)
    assert statuses == [200] * 2 * CONNECTIONS
    counts = answered_by_worker(Path(environment["ROLLCALL_DATA_DIR"]) / "metrics")
    # 64 connections over 4 sockets at random: each gets 16 on average, fewer than 4 about
    # once in 100,000 runs
    assert len(counts) == WORKERS, counts
    assert min(counts.values()) >= 8, counts


def test_a_second_server_on_the_port_is_still_refused():
    # SO_REUSEPORT would let a second server join the first's group and take half its
    # clients: the port is first bound plainly, which fails while any socket holds it
    group = reuse_port_socket("127.0.0.1", 0)
    port = group.getsockname()[1]
    worker = own_socket(group)  # what a worker listens on
    try:
        assert worker.getsockname()[1] == port
        worker.listen()
        with pytest.raises(OSError):
            reuse_port_socket("127.0.0.1", port)
    finally:
        worker.close()
