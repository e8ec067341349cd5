"""SCIM over HTTP: Rollcall against python-scim's ``scim2-server`` reference application.

    python -m bench.scim [--sizes 1000,20000,100000] [--requests 1000] [--quick] [--py-spy DIR]
                         [--only OPS]

For each size, each server in turn (never both at once: they share the machine with the
client) is started on 127.0.0.1 holding that many users (:mod:`bench.reference`: in-memory;
Rollcall: ``rollcall serve --no-worker`` over a fresh SQLite file, :mod:`bench.scim_rollcall`),
then gets a 5,000-member group (as many members as there are users below that) by a SCIM POST,
then one client (httpx) keeps 8 requests in flight for each of: create, ``userName eq`` and
``externalId eq`` lookups, PATCH ``active`` (a JSON boolean with a path), the same as Entra ID
and Okta send it ("Entra/Okta active": Entra's ``"Replace"`` with ``"value": "False"``, Okta's
path-less ``"replace"``, in turn), PATCH member remove/add on the big group and a
paged listing (``count=100`` at offsets across the whole set). The figures are requests/s and
p99 per operation, with the reference's as baseline, and the RSS of each server at the end.
Any unexpected answer is counted as an error and printed. With ``--py-spy DIR``, py-spy
samples the Rollcall process while it is measured (``DIR/rollcall-<users>.txt``, collapsed
stacks: one line per stack with its sample count; ``pip install py-spy``). ``--only "create,PATCH
active"`` measures only those operations. Each operation also gives the server's CPU ms per
request (utime + stime from ``/proc``): on a shared machine it moves far less than req/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from bench.figures import Figure
from bench.scim_data import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    external_id,
    user_document,
    user_id,
    user_name,
)
from bench.servers import Run, drive, free_port, python_command, rollcall_command, rss_mib, serving

GROUP_SIZE = 5000
STRIDE = 7919  # a prime: request k reads user (k * STRIDE) mod N, spread over the whole set
FRESH = 10_000_000  # numbers of the users the create benchmark makes (never preloaded)
# A member change on the big group and a page of 100 users cost each server tens of times a
# lookup: they get a fifth of the requests, so one size's run stays within a minute or two.
HEAVY = 5


def _lookup(attribute: str, users: int) -> Callable[[httpx.AsyncClient, int], Any]:
    def request(client: httpx.AsyncClient, k: int) -> Any:
        number = (k * STRIDE) % users
        value = user_name(number) if attribute == "userName" else external_id(number)
        return client.get("/Users", params={"filter": f'{attribute} eq "{value}"'})

    return request


def operations(users: int, group_id: str, members: int, tag: int) -> dict[str, Any]:
    """The request of each benchmarked operation, by name."""

    def create(client: httpx.AsyncClient, k: int) -> Any:
        return client.post("/Users", json=user_document(FRESH + tag * 1_000_000 + k))

    def patch_active(client: httpx.AsyncClient, k: int) -> Any:
        number = (k * STRIDE) % users
        active = bool((k // users) % 2)  # the first pass deactivates: every PATCH is a change
        body = {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "path": "active", "value": active}],
        }
        return client.patch(f"/Users/{user_id(number)}", json=body)

    def patch_active_as_sent(client: httpx.AsyncClient, k: int) -> Any:
        # the (de)activations Entra ID and Okta really send (issue 15's target names both):
        # Entra's "Replace" with the boolean as a string, Okta's path-less "replace"; on the
        # other half of the users than "PATCH active", so each one is a change too
        number = (k * STRIDE + users // 2) % users
        active = bool((k // users) % 2)
        if k % 2 == 0:
            operation: dict[str, Any] = {"op": "Replace", "path": "active", "value": str(active)}
        else:
            operation = {"op": "replace", "value": {"active": active}}
        body = {"schemas": [PATCH_SCHEMA], "Operations": [operation]}
        return client.patch(f"/Users/{user_id(number)}", json=body)

    def patch_members(client: httpx.AsyncClient, k: int) -> Any:
        member = user_id((k // 2) % members)
        if k % 2 == 0:  # RFC 7644 §3.5.2.2: remove by value filter; the next request adds back
            operation = {"op": "remove", "path": f'members[value eq "{member}"]'}
        else:
            operation = {"op": "add", "path": "members", "value": [{"value": member}]}
        body = {"schemas": [PATCH_SCHEMA], "Operations": [operation]}
        return client.patch(f"/Groups/{group_id}", json=body)

    def list_page(client: httpx.AsyncClient, k: int) -> Any:
        start = 1 + (k * STRIDE * 100) % max(users - 100, 1)
        return client.get("/Users", params={"startIndex": start, "count": 100})

    return {
        "create": create,
        "userName eq": _lookup("userName", users),
        "externalId eq": _lookup("externalId", users),
        "PATCH active": patch_active,
        "Entra/Okta active": patch_active_as_sent,
        f"PATCH members ({members:,})": patch_members,
        "list page": list_page,
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    base_url: str,
    headers: dict[str, str],
    users: int,
    requests: int,
    pid: int,
    only: set[str] | None = None,
) -> dict:
    """Every operation (or those ``only`` names) against one running server: ``{name: Run}``,
    the server's CPU ms per request of each (the figure a shared machine moves least) and
    its RSS."""
    members = min(GROUP_SIZE, users)
    group = {
        "schemas": [GROUP_SCHEMA],
        "displayName": "Bench staff",
        "members": [{"value": user_id(n)} for n in range(members)],
    }
    made = httpx.post(f"{base_url}/Groups", json=group, headers=headers, timeout=300)
    if made.status_code != 201:
        raise RuntimeError(f"group creation answered {made.status_code}: {made.text[:300]}")
    runs: dict[str, Run] = {}
    cpu_ms: dict[str, float] = {}
    warm = operations(users, made.json()["id"], members, tag=9)
    drive(base_url, headers, warm["userName eq"], 16)
    for name, request in operations(users, made.json()["id"], members, tag=0).items():
        if only and name.split(" (")[0] not in only:
            continue
        heavy = name.startswith("PATCH members") or name == "list page"
        before = cpu_seconds(pid)
        runs[name] = drive(base_url, headers, request, requests // HEAVY if heavy else requests)
        served = len(runs[name].latencies_ms) + len(runs[name].errors)
        cpu_ms[name] = (cpu_seconds(pid) - before) * 1000 / max(served, 1)
    return {"runs": runs, "cpu_ms": cpu_ms, "rss_mib": rss_mib(pid)}


def run_reference(users: int, requests: int, scratch: Path, only: set[str] | None = None) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}/v2"
    command = python_command("bench.reference", "--port", str(port), "--users", str(users))
    with serving(command, f"{base}/ServiceProviderConfig", scratch / f"ref-{users}.log") as proc:
        return measure(base, {}, users, requests, proc.pid, only)


@contextmanager
def sampled(pid: int, folder: Path | None, name: str) -> Iterator[None]:
    """py-spy samples process ``pid`` inside the block, when a folder is given."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if folder is None or spy is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.txt"
    command = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
    spying = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spying.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
        spying.wait(timeout=60)


def run_rollcall(
    users: int,
    requests: int,
    scratch: Path,
    spy: Path | None = None,
    only: set[str] | None = None,
) -> dict:
    from bench.scim_rollcall import prepare  # Rollcall's modules stay out of the reference

    data = scratch / f"rollcall-{users}"
    data.mkdir()
    url = f"sqlite:///{data}/rollcall.sqlite3"
    token = prepare(url, users)
    port = free_port()
    env = {
        "ROLLCALL_DATABASE_URL": url,
        "ROLLCALL_DATA_DIR": str(data),
        "ROLLCALL_SECRET_KEY": "bench-scim-secret",
        "ROLLCALL_ISSUER": f"http://127.0.0.1:{port}",
    }
    command = rollcall_command("serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port))
    log = scratch / f"rollcall-{users}.log"
    with serving(command, f"http://127.0.0.1:{port}/healthz", log, env) as process:
        base = f"http://127.0.0.1:{port}/scim/v2"
        with sampled(process.pid, spy, f"rollcall-{users}"):
            headers = {"Authorization": f"Bearer {token}"}
            return measure(base, headers, users, requests, process.pid, only)


def figures(users: int, ours: dict, reference: dict) -> list[Figure]:
    """The figures of one size: per operation req/s and p99, then both RSS."""
    size = f"@{users // 1000}k" if users >= 1000 else f"@{users}"
    out = []
    for name, run in ours["runs"].items():
        base = reference["runs"][name]
        details = {
            "users": users,
            "requests": len(run.latencies_ms) + len(run.errors),
            "concurrency": 8,
            "p99_ms": round(run.p99_ms, 1),
            "median_ms": round(run.median_ms, 1),
            "reference_p99_ms": round(base.p99_ms, 1),
            "server_cpu_ms_per_request": round(ours["cpu_ms"][name], 2),
            "reference_server_cpu_ms_per_request": round(reference["cpu_ms"][name], 2),
            "errors": len(run.errors),
            "first_errors": run.errors[:3],
            "reference_errors": len(base.errors),
            "reference_first_errors": base.errors[:3],
        }
        out.append(
            Figure(
                "scim",
                f"{name} {size}",
                round(run.per_second, 1),
                "req/s",
                round(base.per_second, 1),
                "scim2-server",
                details=details,
            )
        )
        out.append(
            Figure(
                "scim",
                f"{name} {size} server CPU per request",
                round(ours["cpu_ms"][name], 2),
                "ms",
                round(reference["cpu_ms"][name], 2),
                "scim2-server",
                better="lower",
            )
        )
        out.append(
            Figure(
                "scim",
                f"{name} {size} p99",
                round(run.p99_ms, 1),
                "ms",
                round(base.p99_ms, 1),
                "scim2-server",
                better="lower",
            )
        )
    out.append(
        Figure(
            "scim",
            f"RSS after the run {size}",
            round(ours["rss_mib"], 1),
            "MiB",
            round(reference["rss_mib"], 1),
            "scim2-server",
            better="lower",
        )
    )
    return out


def run(
    sizes: list[int], requests: int, spy: Path | None = None, only: set[str] | None = None
) -> list[Figure]:
    out: list[Figure] = []
    with tempfile.TemporaryDirectory() as scratch:
        for users in sizes:
            started = time.perf_counter()
            reference = run_reference(users, requests, Path(scratch), only)
            ours = run_rollcall(users, requests, Path(scratch), spy, only)
            out += figures(users, ours, reference)
            print(f"scim @{users:,}: {time.perf_counter() - started:.0f} s", flush=True)
    return out


def main(argv: list[str] | None = None, quick: bool = False) -> list[Figure]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scim", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default=None, help="comma-separated user counts")
    parser.add_argument("--requests", type=int, default=None, help="per operation")
    parser.add_argument("--quick", action="store_true", default=quick)
    parser.add_argument("--py-spy", type=Path, default=None, help="folder for py-spy samples")
    parser.add_argument("--only", default="", help='operations, e.g. "create,PATCH active"')
    args = parser.parse_args(argv)
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    default_sizes = "1000,20000" if args.quick else "1000,20000,100000"
    sizes = [int(s) for s in (args.sizes or default_sizes).split(",")]
    requests = args.requests or (200 if args.quick else 1000)
    return run(sizes, requests, args.py_spy, only)


if __name__ == "__main__":
    from bench.figures import table

    found = main()
    print(table(found))
    for figure in found:
        print(figure.json_line())
