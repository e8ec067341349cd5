"""OneRoster 1.2 paging: the first page against a deep page, for every kind of reading client.

    python -m bench.oneroster [--users 1000,100000] [--repeats 15]

For each size, loads N users with a role at one of 20 schools (:func:`bench.search.load`) into
a fresh SQLite file, registers three OneRoster API clients (district-wide; limited to all 20
schools, so it sees every user through the school-limit path; limited to one school) and serves
with ``rollcall serve --no-worker``. For each client it times ``GET /users?limit=100`` at
offset 0 (the baseline) and at the deepest full page (offset 99,900 at 100,000 users; N/20 -
100 for the one-school client), median of repeated requests over HTTP, and prints the ratio
deep/first. With several sizes, a client that sees fewer than 100 users at the smallest reads
pages of that many at every size (:func:`page_size`: the one-school client 50 at 1k and 100k).
The first request of each kind is timed apart (in the details: ``counting_ms``, a
``limit=1`` read that counts the total; ``cold_deep_ms``, the first deep page, which finds the
sourcedId anchors or the kept order); the repeats read them kept
(``server.domain.roster_reads``) until the roster changes. With two sizes or more, it also
prints each client's first and deep page at the largest size against its first page at the
smallest: flat means near 1x.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.figures import Figure
from bench.servers import free_port, rollcall_command, serving

V1P2 = "/ims/oneroster/rostering/v1p2"
SCHOOLS = [f"s{i}" for i in range(20)]
CLIENTS = {"district-wide": [], "all 20 schools": SCHOOLS, "one school": ["s3"]}


def page_size(label: str, smallest: int) -> int:
    """100, or fewer when the client sees fewer users at the smallest size (the one-school
    client sees 50 of 1,000): a flat comparison renders as many users at every size."""
    share = len(CLIENTS[label] or SCHOOLS) / len(SCHOOLS)
    return max(1, min(100, int(smallest * share)))


def prepare(url: str, users: int) -> dict[str, tuple[str, str]]:
    """Load the district; returns ``{client label: (client_id, secret)}``."""
    from bench.search import load
    from server.db.migrate import upgrade
    from server.db.oauth import OAuthClientKind
    from server.db.session import Database
    from server.domain.actors import system_actor
    from server.domain.oauth import DEFAULT_ONEROSTER_SCOPES, create_client

    database = Database(url)
    upgrade(database.engine)
    tenant_id, _ = load(database, users)
    found = {}
    with database.session() as session:
        actor = system_actor(tenant_id)
        for label, schools in CLIENTS.items():
            made = create_client(
                session,
                actor,
                f"bench {label}",
                kind=OAuthClientKind.API,
                scopes=DEFAULT_ONEROSTER_SCOPES,
                school_sourced_ids=schools,
            )
            found[label] = (made.client.client_id, made.secret or "")
    database.dispose()
    return found


def timed_ms(client: httpx.Client, path: str, params: dict, repeats: int) -> tuple[float, float]:
    """(the first request's ms, the median of ``repeats`` more)."""
    timings = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return timings[0], statistics.median(timings[1:])


def run(users: int, repeats: int, smallest: int | None = None) -> list[Figure]:
    out: list[Figure] = []
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/rollcall.sqlite3"
        clients = prepare(url, users)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            "ROLLCALL_DATABASE_URL": url,
            "ROLLCALL_DATA_DIR": scratch,
            "ROLLCALL_SECRET_KEY": "bench-oneroster-secret",
            "ROLLCALL_ISSUER": base,
        }
        command = rollcall_command(
            "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)
        )
        with serving(command, f"{base}/healthz", Path(scratch) / "serve.log", env):
            for label, (client_id, secret) in clients.items():
                issued = httpx.post(
                    f"{base}/oauth/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client_id, secret),
                )
                issued.raise_for_status()
                headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
                with httpx.Client(base_url=base + V1P2, headers=headers, timeout=120) as http:
                    started = time.perf_counter()  # the first read counts the total
                    total = int(http.get("/users", params={"limit": 1}).headers["X-Total-Count"])
                    counting = (time.perf_counter() - started) * 1000
                    limit = page_size(label, smallest or users)
                    deep = max(total - limit, 0)
                    cold_first, first = timed_ms(http, "/users", {"limit": limit}, repeats)
                    page = {"limit": limit, "offset": deep}
                    cold_deep, last = timed_ms(http, "/users", page, repeats)
                out.append(
                    Figure(
                        "oneroster",
                        f"users deep page (offset {deep:,}), {label} @{users // 1000}k",
                        round(last, 1),
                        "ms",
                        round(first, 1),
                        "first page",
                        better="lower",
                        details={
                            "users": users,
                            "visible": total,
                            "limit": limit,
                            "repeats": repeats,
                            "counting_ms": round(counting, 1),
                            "cold_first_ms": round(cold_first, 1),
                            "cold_deep_ms": round(cold_deep, 1),
                        },
                    )
                )
    return out


def flatness(runs: dict[int, list[Figure]]) -> list[Figure]:
    """Each client's pages at the largest size against its first page at the smallest."""
    small, large = min(runs), max(runs)
    out = []
    for low, high in zip(runs[small], runs[large], strict=True):
        label = high.figure.split(", ", 1)[1].rsplit(" @", 1)[0]
        for what, value in (("first page", high.baseline), ("deep page", high.value)):
            out.append(
                Figure(
                    "oneroster",
                    f"users {what} @{large // 1000}k, {label}",
                    value or 0.0,
                    "ms",
                    low.baseline,
                    f"first page @{small // 1000}k",
                    better="lower",
                    details={"sizes": [small, large]},
                )
            )
    return out


def main(argv: list[str] | None = None, quick: bool = False) -> list[Figure]:
    parser = argparse.ArgumentParser(prog="python -m bench.oneroster")
    parser.add_argument("--users", default=None, help="comma-separated user counts")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", default=quick)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in (args.users or ("5000" if args.quick else "1000,100000")).split(",")]
    repeats = args.repeats or (5 if args.quick else 15)
    runs = {users: run(users, repeats, min(sizes)) for users in sizes}
    found = [figure for figures in runs.values() for figure in figures]
    return found + (flatness(runs) if len(runs) > 1 else [])


if __name__ == "__main__":
    from bench.figures import table

    found = main()
    print(table(found))
    for figure in found:
        print(figure.json_line())
