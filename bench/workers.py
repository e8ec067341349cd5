"""The PostgreSQL worker curve: ``rollcall serve --workers N`` for N = 1, 2, 4 on one database.

    python -m bench.workers [--users 3000] [--requests 1500] [--database-url URL]

Without ``--database-url`` (or ``ROLLCALL_BENCH_DATABASE_URL``) it starts a throw-away
PostgreSQL of its own the way ``.ci/run`` does (``initdb`` in a temporary directory, as the
``postgres`` user when run as root, 127.0.0.1 on a free port, ``fsync=off``) and removes it at
the end; without PostgreSQL binaries it says so and skips. One database gets ``--users`` SCIM
users (:mod:`bench.scim_rollcall`); each N starts from a copy of it (``CREATE DATABASE ...
TEMPLATE``: the migrations and the load run once, not three times), then one client keeps 16
requests in flight in a mix of SCIM create, ``userName eq`` lookup, ``externalId eq`` lookup
and PATCH of existing users. The figures are requests/s for N = 2 and 4 against N = 1, and
the errors.

Each point waits until the server's processes are idle after their start (every worker has
imported and built its app: a worker still starting would take the cores from the measured
requests), then warms every worker up: ``--warmup`` requests per worker, each on a connection
of its own, until every worker has answered that many (a keep-alive connection stays with the
worker that accepted it, so warming over the client's 16 connections reached a few workers and
left the others to answer their first requests inside the measured rounds); then runs
``--rounds`` rounds of ``--requests``; the figure is the median round, and the details give
each round, the CPU seconds each server process spent in the measured rounds and the
requests each worker answered in them (how evenly the workers shared the work: the client's
keep-alive connections stay with the workers that accepted them), and the CPU milliseconds
per request of the client, the server and PostgreSQL (when it runs on this machine) with the
cores they kept busy: on one 2-core machine the three share the cores, so more workers add
processes, not CPU.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, text

from bench.figures import Figure
from bench.scim_data import PATCH_SCHEMA, external_id, user_document, user_id, user_name
from bench.servers import Run, drive, free_port, rollcall_command, serving

STRIDE = 7919


def _postgres_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:  # /usr/local/bin/initdb may be a link into the server's own bin folder
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    return versions[-1] if versions else None


@contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A PostgreSQL cluster in a temporary directory; yields its URL (None: no binaries)."""
    binaries = _postgres_bin()
    if binaries is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="rollcall-bench-pg-"))
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(folder, "postgres")
    port = free_port()
    data = folder / "data"

    def pg(*command: str) -> None:
        subprocess.run([*as_postgres, *command], check=True, capture_output=True)

    try:
        # --no-sync: a throw-away cluster needs no fsync of its new files (seconds under load)
        initdb = [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
        pg(*initdb, "--no-sync")
        options = f"-k {folder} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c max_connections=200"
        pg(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-w",
            "-o",
            options,
            "start",
        )
        pg(
            str(binaries / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "rollcall_bench",
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/rollcall_bench"
    finally:
        subprocess.run(
            [*as_postgres, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def own_database(url: str, template: str | None = None) -> Iterator[str]:
    """A fresh database on the same server (a copy of the database at ``template``, if
    given), dropped afterwards.

    (A schema of its own would not do: Rollcall's engine sets the connection's ``options``
    itself, which replaces a ``search_path`` given in the URL.)
    """
    name = f"bench_workers_{secrets.token_hex(4)}"
    copied = f" TEMPLATE {make_url(template).database}" if template else ""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}{copied}"))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def mixed(users: int, first_new: int) -> Any:
    """Request k of the mix: a quarter each of create (of user ``first_new + k``), two lookups
    and PATCH."""

    def request(client: httpx.AsyncClient, k: int) -> Any:
        number = (k * STRIDE) % users
        kind = k % 4
        if kind == 0:
            return client.post("/Users", json=user_document(first_new + k))
        if kind == 1:
            return client.get("/Users", params={"filter": f'userName eq "{user_name(number)}"'})
        if kind == 2:
            value = external_id(number)
            return client.get("/Users", params={"filter": f'externalId eq "{value}"'})
        body = {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "path": "displayName", "value": f"Bench {k}"}],
        }
        return client.patch(f"/Users/{user_id(number)}", json=body)

    return request


TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (Linux ``/proc``)."""
    found = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return found
    for child in children:
        found += process_tree(int(child))
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_until_idle(pid: int, processes: int, timeout: float = 120) -> None:
    """Until the tree has ``processes`` processes or more and used under 5% of a core for a
    second: every worker has started and built its app."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tree = process_tree(pid)
        before = sum(cpu_seconds(p) for p in tree)
        time.sleep(1)
        if len(tree) >= processes and sum(cpu_seconds(p) for p in tree) - before < 0.05:
            return
    raise RuntimeError(f"the server's {processes} processes were still starting after {timeout} s")


def answered(metrics: Path) -> dict[int, float]:
    """The requests each worker process has answered so far, by pid, from the counters it
    writes to ``metrics`` (prometheus-client's multiprocess files, ``counter_<pid>.db``)."""
    from prometheus_client.mmap_dict import MmapedDict

    counts: dict[int, float] = {}
    for path in metrics.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        pid = int(path.stem.split("_")[1])
        counts[pid] = sum(v for key, v, *_ in values if '"rollcall_http_requests_total"' in key)
    return counts


def warm_every_worker(
    base: str, headers: dict[str, str], users: int, workers: int, each: int, metrics: Path
) -> None:
    """Until every one of ``workers`` processes has answered ``each`` requests: requests on
    connections of their own (``Connection: close``), which the workers accept in turn."""
    fresh = {**headers, "Connection": "close"}
    for attempt in range(20):
        drive(base, fresh, mixed(users, 30_000_000 + attempt * 10_000), each * workers, 16)
        counts = answered(metrics) if workers > 1 else {0: float(each)}
        if len(counts) >= workers and min(counts.values()) >= each:
            return
    raise RuntimeError(f"some of the {workers} workers were never warmed up: {counts}")


def postmaster(url: str) -> int | None:
    """The pid of the PostgreSQL server at ``url`` when it runs on this machine (the parent
    of a backend's process), else None."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            backend = connection.scalar(text("SELECT pg_backend_pid()"))
        stat = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        return int(stat[1])
    except (OSError, ValueError):
        return None
    finally:
        engine.dispose()


def server_cpu_seconds(pid: int | None) -> float:
    """CPU time of a PostgreSQL server so far: its processes' and the children it reaped."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    reaped = (int(fields[13]) + int(fields[14])) / TICKS
    return reaped + sum(cpu_seconds(p) for p in process_tree(pid))


@dataclass
class Point:
    """The rounds of one N, the CPU seconds each server process spent in them, and the CPU
    seconds of the measured rounds by side: the client (this process), the server's
    processes, PostgreSQL's (0 when it runs elsewhere), and the requests each worker answered."""

    rounds: list[Run]
    cpu: list[float]
    sides: dict[str, float]
    answered: list[float]  # requests each worker answered (empty with one process)

    @property
    def median(self) -> Run:
        return sorted(self.rounds, key=lambda r: r.per_second)[len(self.rounds) // 2]

    def cpu_ms_per_request(self) -> dict[str, float]:
        """Each side's CPU milliseconds per request, and the cores busy on average."""
        count = sum(len(r.latencies_ms) for r in self.rounds)
        wall = sum(r.seconds for r in self.rounds)
        per = {side: round(1000 * s / max(count, 1), 2) for side, s in self.sides.items()}
        return per | {"cores_busy": round(sum(self.sides.values()) / max(wall, 1e-9), 2)}


def one_point(
    url: str,
    prepared: tuple[str, str],
    workers: int,
    users: int,
    requests: int,
    rounds: int,
    scratch: Path,
    warmup: int,
) -> Point:
    """N = ``workers`` on a copy of the ``prepared`` database (its URL and SCIM token) made
    on the server at ``url``."""
    template, token = prepared
    with own_database(url, template) as schema_url:
        database = postmaster(schema_url)
        port = free_port()
        data = scratch / f"workers-{workers}"
        data.mkdir()
        env = {
            "ROLLCALL_DATABASE_URL": schema_url,
            "ROLLCALL_DATA_DIR": str(data),
            "ROLLCALL_SECRET_KEY": "bench-workers-secret",
            "ROLLCALL_ISSUER": f"http://127.0.0.1:{port}",
        }
        command = rollcall_command(
            "serve",
            "--no-worker",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        )
        log = scratch / f"workers-{workers}.log"
        with serving(command, f"http://127.0.0.1:{port}/healthz", log, env) as server:
            # uvicorn's supervisor, its workers (and multiprocessing's resource tracker)
            wait_until_idle(server.pid, 1 if workers == 1 else workers + 1)
            base = f"http://127.0.0.1:{port}/scim/v2"
            headers = {"Authorization": f"Bearer {token}"}
            metrics = data / "metrics"
            warm_every_worker(base, headers, users, workers, warmup, metrics)
            tree = process_tree(server.pid)
            spent = {p: cpu_seconds(p) for p in tree}
            counted = answered(metrics)
            client, postgres = time.process_time(), server_cpu_seconds(database)
            done = [
                drive(base, headers, mixed(users, 20_000_000 + r * requests), requests, 16)
                for r in range(rounds)
            ]
            cpu = sorted((cpu_seconds(p) - spent[p] for p in tree), reverse=True)
            after = answered(metrics)
            shares = sorted((after[p] - counted.get(p, 0) for p in after), reverse=True)
            sides = {
                "client": time.process_time() - client,
                "server": sum(cpu),
                "postgres": server_cpu_seconds(database) - postgres,
            }
            return Point(done, [round(c, 2) for c in cpu if c > 0.01], sides, shares)


def size(users: int) -> str:
    """``3k`` for 3,000 users, ``500`` for 500."""
    return f"{users // 1000}k" if users >= 1000 else str(users)


def curve(url: str, users: int, requests: int, rounds: int = 3, warmup: int = 64) -> list[Figure]:
    """The three points; ``warmup`` requests per worker before the timed rounds."""
    from bench.scim_rollcall import prepare

    # every point starts from a copy of one prepared database (migrated, ``users`` loaded)
    with tempfile.TemporaryDirectory() as scratch, own_database(url) as template:
        prepared = (template, prepare(template, users))
        folder = Path(scratch)
        points = {
            n: one_point(url, prepared, n, users, requests, rounds, folder, warmup)
            for n in (1, 2, 4)
        }
    runs = {n: point.median for n, point in points.items()}
    one = runs[1]
    return [
        Figure(
            "workers",
            f"PostgreSQL, {n} worker{'s' if n > 1 else ''}, mixed SCIM @{size(users)}",
            round(run.per_second, 1),
            "req/s",
            round(one.per_second, 1),
            "1 worker",
            details={
                "workers": n,
                "requests": requests,
                "concurrency": 16,
                "p99_ms": round(run.p99_ms, 1),
                "errors": sum(len(r.errors) for r in points[n].rounds),
                "first_errors": [e for r in points[n].rounds for e in r.errors][:3],
                "rounds_req_s": [round(r.per_second, 1) for r in points[n].rounds],
                "process_cpu_s": points[n].cpu,
                "worker_requests": [int(c) for c in points[n].answered],
                # where the cores went: on one 2-core machine the client, the server and
                # PostgreSQL share them, so more workers cannot add CPU, only contention
                "cpu_ms_per_request": points[n].cpu_ms_per_request(),
            },
        )
        for n, run in runs.items()
    ]


def main(argv: list[str] | None = None, quick: bool = False) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench.workers")
    parser.add_argument("--database-url", default=os.environ.get("ROLLCALL_BENCH_DATABASE_URL"))
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=None, help="per round")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=None, help="requests per worker")
    parser.add_argument("--quick", action="store_true", default=quick)
    args = parser.parse_args(argv)
    requests = args.requests or (200 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)
    warmup = args.warmup or (16 if args.quick else 64)
    if args.database_url:
        return curve(args.database_url, args.users, requests, rounds, warmup)
    with throwaway_postgres() as url:
        if url is None:
            print("bench.workers: skipped (no PostgreSQL binaries: apt-get install postgresql)")
            return []
        return curve(url, args.users, requests, rounds, warmup)


if __name__ == "__main__":
    from bench.figures import table

    found = main()
    print(table(found))
    for figure in found:
        print(figure.json_line())
