"""Walk a OneRoster 1.2 Rostering service with ``timeback-oneroster``, as a district app would.

Run by ``test_third_party_client_v1p2.py`` with the Python of ``.venv-clients/`` (the client
needs Python 3.12 or newer, the project runs on 3.11): it gets a token by OAuth 2 client
credentials, pages through every collection with a small ``limit`` (following ``Link`` and
``X-Total-Count``), reads the first record of each singly and a few nested collections, and
prints one JSON document: ``{"collections": {name: [sourcedId…]}, "singles": {name: id},
"errors": [{"where": …, "error": …}]}``. Every answer goes through the client's pydantic
models, which refuse a missing required field or a value outside their enumerations; a
refusal is reported under ``errors`` with the client's message and the walk goes on.

Usage: ``python walk_v1p2.py BASE_URL CLIENT_ID CLIENT_SECRET [LIMIT]``
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from timeback_oneroster import OneRosterClient

# client attributes for the 1.2 Rostering endpoints; ``terms`` and ``grading_periods`` are left
# out: the client expects envelopes the 1.2 OpenAPI does not define (see the test's docstring).
COLLECTIONS = [
    "orgs",
    "schools",
    "academic_sessions",
    "courses",
    "classes",
    "users",
    "students",
    "teachers",
    "enrollments",
    "demographics",
]


async def _collect(paginator: Any) -> list[str]:
    return [item.sourced_id async for item in paginator]


async def _walk(client: OneRosterClient, limit: int) -> dict[str, Any]:
    report: dict[str, Any] = {"collections": {}, "singles": {}, "nested": {}, "errors": []}

    async def attempt(where: str, call: Any) -> Any:
        try:
            return await call
        except Exception as error:
            report["errors"].append({"where": where, "error": f"{type(error).__name__}: {error}"})
            return None

    for name in COLLECTIONS:
        resource = getattr(client, name)
        seen = await attempt(name, _collect(resource.stream(limit=limit)))
        if seen is None:
            continue
        report["collections"][name] = seen
        if seen:
            single = await attempt(f"{name}/{{id}}", resource.get(seen[0]))
            if single is not None:
                report["singles"][name] = single.sourced_id
    await _walk_nested(client, report, attempt)
    return report


async def _walk_nested(client: OneRosterClient, report: dict[str, Any], attempt: Any) -> None:
    """The nested reads an app makes to build a class list: a school's students and
    classes, a class's students and teachers, a user's classes."""
    collections = report["collections"]
    for school in collections.get("schools", [])[:2]:
        scoped = client.schools(school)
        for name in ("students", "classes"):
            items = await attempt(f"schools/{school}/{name}", getattr(scoped, name)())
            if items is not None:
                report["nested"][f"schools/{school}/{name}"] = [i.sourced_id for i in items]
    for klass in collections.get("classes", [])[:2]:
        scoped = client.classes(klass)
        for name in ("students", "teachers"):
            items = await attempt(f"classes/{klass}/{name}", getattr(scoped, name)())
            if items is not None:
                report["nested"][f"classes/{klass}/{name}"] = [i.sourced_id for i in items]
    for user in collections.get("students", [])[:2]:
        items = await attempt(f"users/{user}/classes", client.users(user).classes())
        if items is not None:
            report["nested"][f"users/{user}/classes"] = [i.sourced_id for i in items]


async def main(base_url: str, client_id: str, secret: str, limit: int) -> None:
    client = OneRosterClient(
        base_url=base_url,
        auth_url=f"{base_url}/oauth/token",
        client_id=client_id,
        client_secret=secret,
    )
    async with client:
        report = await _walk(client, limit)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    url, cid, secret = sys.argv[1:4]
    asyncio.run(main(url, cid, secret, int(sys.argv[4]) if len(sys.argv) > 4 else 7))
