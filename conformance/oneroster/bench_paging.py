"""Deep paging on 100,000 users: ``python -m conformance.oneroster.bench_paging``.

Not part of the test run (it takes a while to load the rows). It fills a throw-away SQLite
database (or ``ROLLCALL_BENCH_DATABASE_URL``) with one school and N students, then times
``GET /users`` pages at growing offsets, sorted and filtered, for an unlimited client and for
a client limited to the school.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert, text
from starlette.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.db import User, UserRole, utcnow
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain import oauth, roster
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant, manual_connection

SCOPE = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"


def fill(database: Database, count: int) -> None:
    with database.session() as session:
        tenant = create_tenant(session, f"Bench {uuid.uuid4().hex[:6]}")
        actor = system_actor(tenant.id)
        school = roster.create_org(
            session, actor, {"name": "S", "type": "school", "sourced_id": "s"}
        )
        owner = manual_connection(session, tenant.id)
        now = utcnow()
        for start in range(0, count, 10_000):
            people, roles = [], []
            for i in range(start, min(count, start + 10_000)):
                uid = str(uuid.uuid4())
                people.append(
                    {
                        "id": uid,
                        "tenant_id": tenant.id,
                        "connection_id": owner.id,
                        "sourced_id": f"u{i:07d}",
                        "username": f"user{i}",
                        "username_folded": f"user{i}",
                        "given_name": "G",
                        "family_name": f"F{i % 977}",
                        "given_folded": "g",
                        "family_folded": f"f{i % 977}",
                        "primary_role": "student",
                        "status": "active",
                        "demographic_flags": {},
                        "extra": {},
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                    }
                )
                roles.append(
                    {"user_id": uid, "org_id": school.id, "role": "student", "role_type": "primary"}
                )
            session.execute(insert(User), people)
            session.execute(insert(UserRole), roles)
        for name, schools in (("everything", []), ("one school", ["s"])):
            client = oauth.create_client(
                session, actor, name, kind="api", scopes=[SCOPE], school_sourced_ids=schools
            ).client
            oauth.store_token(session, client, f"bench-{name}", SCOPE)


def main(count: int = 100_000) -> None:
    scratch = Path(tempfile.mkdtemp())
    url = os.environ.get("ROLLCALL_BENCH_DATABASE_URL") or f"sqlite:///{scratch}/bench.sqlite3"
    database = Database(url)
    upgrade(database.engine)
    started = time.perf_counter()
    fill(database, count)
    if database.engine.dialect.name == "postgresql":
        # Fresh statistics, as autovacuum would gather them after a bulk load.
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("ANALYZE"))
    print(f"loaded {count} users in {time.perf_counter() - started:.1f} s")
    app = create_app(Settings(scratch, url, "bench"), database=database)
    queries = [
        "offset=0",
        f"offset={count // 2}",
        f"offset={count - 100}",
        f"offset={count - 100}&sort=familyName",
        "filter=familyName='F5'",
        f"offset={count - 100}&filter=role='student'",
    ]
    with TestClient(app) as client:
        for name in ("everything", "one school"):
            headers = {"Authorization": f"Bearer bench-{name}"}
            for query in queries:
                url_path = f"/ims/oneroster/rostering/v1p2/users?{query}"
                client.get(url_path, headers=headers)
                started = time.perf_counter()
                response = client.get(url_path, headers=headers)
                took = (time.perf_counter() - started) * 1000
                print(f"{name:>10}  {query:<40} {response.status_code} {took:7.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
