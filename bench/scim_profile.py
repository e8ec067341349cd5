"""Where a SCIM request's time goes, in process: SQL statements and CPU per request.

    python -m bench.scim_profile [--users 20000] [--requests 200] [--profile DIR] [--only OPS]

Loads N users (:mod:`bench.scim_rollcall`), then sends each operation of :mod:`bench.scim`
through Starlette's ``TestClient`` (the whole app, no network), one at a time, counting the SQL
statements the engine runs and the CPU time of the process per request. CPU time, unlike wall
time, hardly moves when other work shares the machine, so it is the figure to compare before
and after a change. With ``--profile DIR`` each operation also writes a pyinstrument report
(``DIR/<operation>.txt``): the call tree that the per-request costs in ``bench/README.md``
were read from.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from starlette.testclient import TestClient

from bench.scim import GROUP_SIZE, operations
from bench.scim_data import GROUP_SCHEMA, user_id
from bench.scim_rollcall import prepare


class _SyncClient:
    """Adapts TestClient to the request functions of bench.scim (which await their answer)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def _done(self, response: Any) -> Any:
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self._done(self.client.get("/scim/v2" + path, **kwargs))

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._done(self.client.post("/scim/v2" + path, **kwargs))

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self._done(self.client.patch("/scim/v2" + path, **kwargs))


def profile(
    users: int, requests: int, folder: Path | None, only: set[str] | None = None
) -> list[dict[str, Any]]:
    from server.app import create_app
    from server.config import load_settings
    from server.db.session import Database

    found = []
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/rollcall.sqlite3"
        token = prepare(url, users)
        settings = load_settings(
            {
                "ROLLCALL_DATABASE_URL": url,
                "ROLLCALL_DATA_DIR": scratch,
                "ROLLCALL_SECRET_KEY": "bench-profile-secret",
            }
        )
        database = Database(url)
        seen: list[str] = []
        event.listen(database.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
        app = create_app(settings, database=database, worker=False)
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            members = min(GROUP_SIZE, users)
            group = {
                "schemas": [GROUP_SCHEMA],
                "displayName": "Bench staff",
                "members": [{"value": user_id(n)} for n in range(members)],
            }
            group_id = client.post("/scim/v2/Groups", json=group).json()["id"]
            sync = _SyncClient(client)
            for name, request in operations(users, group_id, members, tag=0).items():
                if only and name.split(" (")[0] not in only:
                    continue
                asyncio.run(request(sync, requests + 1))  # warm
                seen.clear()
                profiler = _profiler(folder)
                cpu = time.process_time()
                for k in range(requests):
                    response = asyncio.run(request(sync, k))
                    if response.status_code >= 300:
                        raise RuntimeError(f"{name}: {response.status_code} {response.text}")
                cpu = time.process_time() - cpu
                if profiler is not None and folder is not None:
                    profiler.stop()
                    (folder / f"{name.split(' (')[0].replace(' ', '_')}.txt").write_text(
                        profiler.output_text(unicode=False, color=False)
                    )
                found.append(
                    {
                        "operation": name,
                        "statements_per_request": round(len(seen) / requests, 1),
                        "cpu_ms_per_request": round(cpu * 1000 / requests, 2),
                    }
                )
        database.dispose()
    return found


class _Profiled:
    """pyinstrument around each request's unit of work, in the thread that runs it (the SCIM
    handler runs in a worker thread; a profiler of the calling thread sees only waiting)."""

    def __init__(self) -> None:
        from pyinstrument import Profiler  # a bench-only dependency (pyproject "bench" extra)

        from scim.app import ScimApplication

        self.profiler = Profiler(async_mode="disabled")
        self.original = ScimApplication._serve_in_unit_of_work
        profiler, original = self.profiler, self.original

        def serve(app: Any, request: Any) -> Any:
            profiler.start()
            try:
                return original(app, request)
            finally:
                profiler.stop()

        ScimApplication._serve_in_unit_of_work = serve  # type: ignore[method-assign]

    def stop(self) -> None:
        from scim.app import ScimApplication

        ScimApplication._serve_in_unit_of_work = self.original  # type: ignore[method-assign]

    def output_text(self, **options: Any) -> str:
        return self.profiler.output_text(**options)


def _profiler(folder: Path | None) -> Any:
    return None if folder is None else _Profiled()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--only", default="", help='operations, e.g. "userName eq,create"')
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    only = {name.strip() for name in args.only.split(",") if name.strip()} or None
    for row in profile(args.users, args.requests, args.profile, only):
        print(
            f"{row['operation']:28} {row['statements_per_request']:6.1f} statements"
            f" {row['cpu_ms_per_request']:8.2f} ms CPU per request"
        )


if __name__ == "__main__":
    main()
