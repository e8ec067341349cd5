"""Staff user search at district scale: ``python -m bench.search [--users 100000]``.

Loads N users (with roles and grades) into a fresh SQLite database (or
``ROLLCALL_BENCH_DATABASE_URL``), then times the searches staff run — first page, a deep page,
a name prefix, a grade filter, a school filter — through ``server.domain.search.search_users``,
against a baseline measured in the same run: the bare ``SELECT … ORDER BY … LIMIT 50`` of one
page of the users table. It prints each search's median time and its ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

from sqlalchemy import insert, select, text

from server.db import Connection, Org, User, UserGrade, UserRole
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain.actors import system_actor
from server.domain.search import UserQuery, search_users
from server.domain.tenants import create_tenant

GIVEN = ["ava", "ben", "chloe", "dev", "ella", "finn", "grace", "hugo", "isla", "jack", "kai"]
FAMILY = ["smith", "jones", "patel", "nguyen", "garcia", "khan", "brown", "taylor", "lopez"]


def load(database: Database, users: int) -> tuple[str, str]:
    with database.session() as session:
        tenant = create_tenant(session, f"bench-{uuid.uuid4().hex[:6]}")
        manual = session.scalars(select(Connection).where(Connection.tenant_id == tenant.id)).one()
        schools = [
            Org(
                tenant_id=tenant.id,
                connection_id=manual.id,
                sourced_id=f"s{i}",
                name=f"School {i}",
                type="school",
            )
            for i in range(20)
        ]
        session.add_all(schools)
        session.flush()
        tenant_id, connection_id, school_ids = tenant.id, manual.id, [s.id for s in schools]
    rows, roles, grades = [], [], []
    for number in range(users):
        user_id = str(uuid.uuid4())
        given, family = GIVEN[number % len(GIVEN)], FAMILY[(number // 7) % len(FAMILY)]
        username = f"{given}{family}{number}"
        rows.append(
            {
                "id": user_id,
                "tenant_id": tenant_id,
                "connection_id": connection_id,
                "sourced_id": user_id,
                "username": username,
                "username_folded": username,
                "given_name": given.title(),
                "family_name": family.title(),
                "given_folded": given,
                "family_folded": family,
                "primary_role": "student",
                "status": "active" if number % 10 else "inactive",
            }
        )
        roles.append({"user_id": user_id, "org_id": school_ids[number % 20], "role": "student"})
        grades.append({"user_id": user_id, "grade": f"{number % 12 + 1:02d}"})
    with database.engine.begin() as connection:
        for table, batch in ((User, rows), (UserRole, roles), (UserGrade, grades)):
            for start in range(0, len(batch), 5000):
                connection.execute(insert(table), batch[start : start + 5000])
        connection.execute(text("ANALYZE"))
    return tenant_id, school_ids[3]


def median_ms(fn: Callable[[], object], repeats: int = 15) -> float:
    fn()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = os.environ.get("ROLLCALL_BENCH_DATABASE_URL") or f"sqlite:///{scratch}/bench.sqlite3"
        database = Database(url)
        upgrade(database.engine)
        started = time.perf_counter()
        tenant_id, school_id = load(database, args.users)
        elapsed = time.perf_counter() - started
        print(f"loaded {args.users:,} users in {elapsed:.1f}s ({url.split(':')[0]})")
        actor = system_actor(tenant_id)

        def baseline() -> None:
            with database.session() as session:
                session.execute(
                    select(User.id)
                    .where(User.tenant_id == tenant_id)
                    .order_by(User.family_folded, User.given_folded, User.id)
                    .limit(50)
                ).all()

        def searching(query: UserQuery) -> Callable[[], object]:
            def run() -> object:
                with database.session() as session:
                    return search_users(session, actor, query)

            return run

        base = median_ms(baseline)
        print(f"{'baseline: one page of users (bare SELECT)':48} {base:8.2f} ms   1.00x")
        cases = {
            "first page": UserQuery(),
            "deep page (offset 50,000)": UserQuery(offset=50_000),
            "name prefix 'smi'": UserQuery(text="smi"),
            "grade 07": UserQuery(grade="07"),
            "one school, inactive included": UserQuery(school_id=school_id, include_inactive=True),
        }
        for label, query in cases.items():
            took = median_ms(searching(query))
            print(f"{'search: ' + label:48} {took:8.2f} ms {took / base:6.2f}x")


if __name__ == "__main__":
    main()
