"""Benchmark: import a generated district and compare with a plain ``executemany``.

    python -m bench.imports [--users 3000] [--classes-per-student 4] [--version 1.1]
        [--database-url URL]

It writes a OneRoster 1.1 bulk package (a district, schools, a term, courses, classes,
students and teachers, enrollments), then, each in a fresh process so peak memory is its own:

1. the baseline: every row of every file inserted with one ``executemany`` per batch of 1,000
   into plain text tables of the same database, in one transaction;
2. Rollcall imports at half and at full size (each into a fresh tenant, as ``rollcall import``
   does it), in this order: a trial run and the apply of the first import, the unchanged
   re-import (a nightly full sync with nothing new), and a trial run and the apply of the same
   package with 1% of the users changed.

It prints seconds, rows per second, peak memory (max RSS), the seconds SQLite's write lock was
held (the replay of the writes prepared on a copy: ``server/imports/prepared.py``) and the
process's CPU seconds (the figure to compare on a shared machine, where wall seconds follow
the load) of each, the ratios import/baseline, and one JSON line with every figure. Peak
memory that stays about the same from half to full size shows the import streams.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import multiprocessing
import resource
import tempfile
import time
import zipfile
from pathlib import Path

from oneroster.csv_files import HEADERS

STUDENTS_PER_CLASS = 25
BATCH = 1000


def generate(
    path: Path, users: int, classes_per_student: int, changed: int = 0, version: str = "1.1"
) -> int:
    """Write the package; returns its number of data rows. ``changed``: every ``changed``-th
    user gets another family name (100: a 1% change). A 1.2 package lists each user's role in
    ``roles.csv`` (and the school as ``primaryOrgSourcedId``) instead of ``users.csv``."""
    headers = HEADERS[version]
    files = ["orgs", "academicSessions", "courses", "classes", "users", "enrollments"]
    absent = ["categories", "classResources", "courseResources", "demographics", "lineItems"]
    absent += ["resources", "results"]
    if version == "1.2":
        files.append("roles")
        absent.append("userProfiles")
    teachers = max(1, users // 20)
    students = users - teachers
    schools = max(1, users // 1000)
    classes = max(1, students * classes_per_student // STUDENTS_PER_CLASS)
    rows = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        manifest = ["propertyName,value", "manifest.version,1.0", f"oneroster.version,{version}"]
        manifest += [f"file.{name},bulk" for name in files]
        manifest += [f"file.{name},absent" for name in absent]
        manifest.append("source.systemName,bench")
        archive.writestr("manifest.csv", "\r\n".join(manifest) + "\r\n")

        def write(name: str, records) -> None:
            nonlocal rows
            with archive.open(name, "w") as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                writer = csv.DictWriter(
                    text, fieldnames=headers[name], lineterminator="\r\n", extrasaction="ignore"
                )
                writer.writeheader()
                for record in records:
                    writer.writerow(record)
                    rows += 1
                text.flush()
                text.detach()

        write(
            "orgs.csv",
            [{"sourcedId": "d", "name": "Bench District", "type": "district"}]
            + [
                {
                    "sourcedId": f"s{n}",
                    "name": f"School {n}",
                    "type": "school",
                    "parentSourcedId": "d",
                }
                for n in range(schools)
            ],
        )
        write(
            "academicSessions.csv",
            [
                {
                    "sourcedId": "t",
                    "title": "Year",
                    "type": "schoolYear",
                    "startDate": "2026-09-01",
                    "endDate": "2027-07-20",
                    "schoolYear": "2027",
                }
            ],
        )
        write(
            "courses.csv",
            [
                {
                    "sourcedId": f"c{n}",
                    "title": f"Course {n}",
                    "orgSourcedId": "s0",
                    "schoolYearSourcedId": "t",
                }
                for n in range(10)
            ],
        )
        write(
            "classes.csv",
            (
                {
                    "sourcedId": f"k{n}",
                    "title": f"Class {n}",
                    "courseSourcedId": f"c{n % 10}",
                    "classType": "scheduled",
                    "schoolSourcedId": f"s{n % schools}",
                    "termSourcedIds": "t",
                }
                for n in range(classes)
            ),
        )

        def people():
            for n in range(users):
                role = "teacher" if n < teachers else "student"
                yield {
                    "sourcedId": f"u{n}",
                    "enabledUser": "true",
                    "orgSourcedIds": f"s{n % schools}",
                    "role": role,
                    "username": f"user{n}",
                    "givenName": f"Given{n}",
                    "familyName": f"Changed{n}" if changed and n % changed == 0 else f"Family{n}",
                    "identifier": f"SIS{n}",
                    "email": f"user{n}@bench.invalid",
                    "grades": "" if role == "teacher" else f"{n % 12 + 1:02d}",
                    "primaryOrgSourcedId": f"s{n % schools}",
                }

        write("users.csv", people())
        if version == "1.2":
            write(
                "roles.csv",
                (
                    {
                        "sourcedId": f"r{n}",
                        "userSourcedId": f"u{n}",
                        "roleType": "primary",
                        "role": "teacher" if n < teachers else "student",
                        "orgSourcedId": f"s{n % schools}",
                    }
                    for n in range(users)
                ),
            )

        def enrollments():
            for n in range(teachers, users):
                for k in range(classes_per_student):
                    klass = (n * classes_per_student + k) % classes
                    yield {
                        "sourcedId": f"e{n}-{k}",
                        "classSourcedId": f"k{klass}",
                        "schoolSourcedId": f"s{klass % schools}",
                        "userSourcedId": f"u{n}",
                        "role": "student",
                        "primary": "false",
                    }
            for klass in range(classes):
                yield {
                    "sourcedId": f"et{klass}",
                    "classSourcedId": f"k{klass}",
                    "schoolSourcedId": f"s{klass % schools}",
                    "userSourcedId": f"u{klass % teachers}",
                    "role": "teacher",
                    "primary": "true",
                }

        write("enrollments.csv", enrollments())
    return rows


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(url: str, package: str, results) -> None:
    """executemany of every row into plain text tables, one transaction."""
    from sqlalchemy import Column, MetaData, Table, Text, insert

    from server.db.session import Database

    database = Database(url)
    metadata = MetaData()
    started = time.perf_counter()
    rows = 0
    with zipfile.ZipFile(package) as archive, database.engine.begin() as connection:
        for name in archive.namelist():
            if name == "manifest.csv":
                continue
            with archive.open(name) as raw:
                reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
                header = next(reader)
                table = Table(
                    f"bench_{name[:-4].lower()}",
                    metadata,
                    *(Column(f"c{i}", Text) for i in range(len(header))),
                )
                table.drop(connection, checkfirst=True)
                table.create(connection)
                batch = []
                for cells in reader:
                    batch.append({f"c{i}": value for i, value in enumerate(cells)})
                    if len(batch) >= BATCH:
                        connection.execute(insert(table), batch)
                        rows += len(batch)
                        batch = []
                if batch:
                    connection.execute(insert(table), batch)
                    rows += len(batch)
    seconds = time.perf_counter() - started
    with database.engine.begin() as connection:
        metadata.drop_all(connection)
    database.dispose()
    results.put({"rows": rows, "seconds": seconds, "peak_mib": _peak_mib()})


def rollcall_import(url: str, packages: dict[str, str], tenant_name: str, results) -> None:
    """In one process and one fresh tenant: trial run and apply of the first import, the
    unchanged re-import, then a trial run and apply of the package with 1% of users changed."""
    from server.db.migrate import upgrade
    from server.db.session import Database
    from server.domain.actors import system_actor
    from server.domain.connections import create_connection
    from server.domain.secrets import SecretBox
    from server.domain.tenants import create_tenant
    from server.imports.engine import ImportOptions, run_import

    database = Database(url)
    upgrade(database.engine)
    with database.session() as session:
        tenant = create_tenant(session, tenant_name)
        create_connection(session, system_actor(tenant.id), "SIS", "oneroster")
        tenant_id = tenant.id
    box = SecretBox("bench-secret-key-0123456789")
    outcome: dict[str, dict] = {}
    replays = _Replays()
    logging.getLogger("rollcall.imports").addHandler(replays)
    logging.getLogger("rollcall.imports").setLevel(logging.INFO)
    for phase, package, dry_run in PHASES:
        if phase.endswith("after one edit"):
            _edit_one_user(database, tenant_id)
        replays.lock_seconds = 0.0
        started, cpu = time.perf_counter(), time.process_time()
        report = run_import(
            database, box, tenant_id, "SIS", packages[package], ImportOptions(dry_run=dry_run)
        )
        outcome[phase] = {
            "rows": report.row_count,
            "seconds": time.perf_counter() - started,
            # SQLite: how long the write lock was held (the replay of the prepared writes,
            # server/imports/prepared.py); 0 for a trial run, which stores only its report
            "lock_seconds": replays.lock_seconds,
            # this process's CPU: steadier than wall seconds on a shared machine
            "cpu_seconds": time.process_time() - cpu,
            "peak_mib": _peak_mib(),
            "status": report.status,
            "summary": report.summary,
        }
        report.close()
        if phase == "first import":  # measured after this process, in one of its own
            outcome["floor of"] = {"tenant_id": tenant_id, "run_id": report.id}
    database.dispose()
    results.put(outcome)


class _Replays(logging.Handler):
    """Adds up the write lock's holds the imports log ("import replayed", lock_seconds)."""

    lock_seconds = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "import replayed":
            self.lock_seconds += getattr(record, "lock_seconds", 0.0)


def _edit_one_user(database, tenant_id: str) -> None:
    """A district admin renames one imported student (with override): the roster changed
    since the last import, so the next one is read row by row (issue 15)."""
    from sqlalchemy import select

    from server.db import User
    from server.domain.actors import system_actor
    from server.domain.users import update_user

    with database.session() as session:
        user = session.scalars(
            select(User).where(User.tenant_id == tenant_id).order_by(User.sourced_id).limit(1)
        ).one()
        update_user(session, system_actor(tenant_id), user, {"given_name": "Edited"}, override=True)


def indexed_floor(url: str, of: dict, results) -> None:
    """:func:`floor_of` the first import, in a process of its own (it reads every row the
    import wrote into memory: that must not count as the import's peak)."""
    from server.db.session import Database

    database = Database(url)
    results.put(floor_of(database, of["tenant_id"], of["run_id"]))
    database.dispose()


def floor_of(database, tenant_id: str, run_id: str) -> dict:
    """The floor an import cannot beat: the rows the first import wrote (read back from
    every table: the tenant's rows, of the reports this run's) inserted again with one plain
    DBAPI ``executemany`` per 1,000 into copies of their tables with the same indexes, unique
    constraints and foreign keys, in one transaction. Only the inserts are timed."""
    from server.db import Base

    tables = []
    with database.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            query = _tenant_rows(table, tenant_id, run_id)
            if query is None:
                continue
            rows = connection.exec_driver_sql(*_driver_sql(connection, query)).all()
            if rows:
                tables.append((table, _copy(table, Base.metadata), [tuple(row) for row in rows]))
    written = 0
    seconds = 0.0
    per_table: dict[str, float] = {}
    with database.engine.begin() as connection:
        Base.metadata.create_all(connection, tables=[copy for _, copy, _ in tables])
        for table, copy, rows in tables:
            names = ", ".join(f'"{column.name}"' for column in table.columns)
            mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
            sql = f"INSERT INTO {copy.name} ({names}) VALUES ({', '.join([mark] * len(rows[0]))})"
            started = time.perf_counter()
            for start in range(0, len(rows), BATCH):
                connection.exec_driver_sql(sql, rows[start : start + BATCH])
            per_table[table.name] = time.perf_counter() - started
            seconds += per_table[table.name]
            written += len(rows)
    with database.engine.begin() as connection:
        Base.metadata.drop_all(connection, tables=[copy for _, copy, _ in tables])
    for _, copy, _ in tables:
        Base.metadata.remove(copy)
    return {
        "rows": written,
        "seconds": seconds,
        "tables": {t.name: len(r) for t, _, r in tables},
        "table_seconds": per_table,
    }


def _tenant_rows(table, tenant_id: str, run_id: str):
    """The SELECT of ``table``'s rows that belong to the tenant (through its own
    ``tenant_id`` or the first foreign key to a table that has one), or None; of the import
    runs and their rows, the run's."""
    from sqlalchemy import select

    if table.name == "import_runs":
        return select(table).where(table.c.id == run_id)
    if "run_id" in table.c:
        return select(table).where(table.c.run_id == run_id)
    if "tenant_id" in table.c:
        return select(table).where(table.c.tenant_id == tenant_id)
    for key in table.foreign_keys:
        parent = key.column.table
        if "tenant_id" in parent.c:
            owned = select(key.column).where(parent.c.tenant_id == tenant_id)
            return select(table).where(key.parent.in_(owned))
    return None


def _driver_sql(connection, query):
    """``query`` as driver SQL and parameters, so rows come back as the driver stores them."""
    compiled = query.compile(connection)
    if compiled.positiontup is not None:
        return compiled.string, tuple(compiled.params[name] for name in compiled.positiontup)
    return compiled.string, compiled.params


def _copy(table, copies):
    """``table`` as ``floor_<name>`` beside it (its foreign keys name the real tables): the
    same columns, indexes and constraints, renamed."""
    copy = table.to_metadata(copies, name=f"floor_{table.name}")
    for item in (*copy.indexes, *copy.constraints):
        if isinstance(item.name, str):
            item.name = f"floor_{item.name}"
    return copy


# (phase, package, trial run): the order a district meets them
PHASES = (
    ("first, trial run", "full", True),
    ("first import", "full", False),
    ("unchanged re-import", "full", False),  # identical package: not read row by row
    # one staff edit before it: every row is read and compared with its stored hash
    ("unchanged re-import after one edit", "full", False),
    ("1% changed, trial run", "delta", True),
    ("1% changed", "delta", False),
)


def _in_child(target, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    outcome = results.get()
    process.join()
    return outcome


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--classes-per-student", type=int, default=4)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--version", choices=("1.1", "1.2"), default="1.1", help="OneRoster")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{scratch}/bench.sqlite3"
        packages = {name: str(Path(scratch) / f"{name}.zip") for name in ("full", "delta", "half")}
        made = {"classes_per_student": args.classes_per_student, "version": args.version}
        rows = generate(Path(packages["full"]), args.users, **made)
        generate(Path(packages["delta"]), args.users, changed=100, **made)
        half_rows = generate(Path(packages["half"]), max(2, args.users // 2), **made)
        stamp = str(time.time_ns())
        base = _in_child(baseline, url, packages["full"])
        small = _in_child(rollcall_import, url, {**packages, "full": packages["half"]}, f"h{stamp}")
        big = _in_child(rollcall_import, url, packages, f"bench-full-{stamp}")
        floor = _in_child(indexed_floor, url, big.pop("floor of"))
    return _summarise(args, rows, half_rows, base, small, big, floor)


def _summarise(
    args, rows: int, half_rows: int, base: dict, small: dict, big: dict, floor: dict
) -> dict:
    base_speed = base["rows"] / base["seconds"]
    small.pop("floor of")
    first = big["first import"]
    result = {
        "benchmark": "imports",
        "users": args.users,
        "version": args.version,
        "rows": rows,
        "baseline": base,
        "import_half": small["first import"],
        "import_full": first,
        "phases": big,
        "speed_ratio": first["rows"] / first["seconds"] / base_speed,
        # the same rows on both sides (the database's): the floor's time over the import's
        "indexed_floor": floor,
        "indexed_floor_ratio": floor["seconds"] / first["seconds"],
        "memory_ratio": first["peak_mib"] / base["peak_mib"],
        "memory_growth_half_to_full": max(p["peak_mib"] for p in big.values())
        / max(p["peak_mib"] for p in small.values()),
        "unchanged_speedup": first["seconds"] / big["unchanged re-import"]["seconds"],
        "unchanged_after_edit_speedup": first["seconds"]
        / big["unchanged re-import after one edit"]["seconds"],
    }
    print(
        f"OneRoster {args.version} package: {rows:,} rows ({args.users:,} users); "
        f"half size {half_rows:,} rows"
    )
    print(f"{'':36}{'seconds':>10}{'rows/s':>12}{'x baseline':>12}{'peak MiB':>10}"
          f"{'lock s':>8}{'CPU s':>8}")  # fmt: skip
    print(f"{'executemany baseline':36}{base['seconds']:10.2f}{base_speed:12,.0f}"
          f"{1:12.3f}{base['peak_mib']:10.1f}")  # fmt: skip
    print(f"{'indexed floor':36}{floor['seconds']:10.2f}"
          f"{floor['rows'] / floor['seconds']:>12,.0f}  (rows of the database)")  # fmt: skip
    for name, phase in [("first import, half size", small["first import"]), *big.items()]:
        speed = phase["rows"] / phase["seconds"]
        print(f"{name:36}{phase['seconds']:10.2f}{speed:12,.0f}{speed / base_speed:12.3f}"
              f"{phase['peak_mib']:10.1f}{phase.get('lock_seconds', 0):8.2f}"
              f"{phase.get('cpu_seconds', 0):8.2f}")  # fmt: skip
    print(
        f"import/baseline: speed x{result['speed_ratio']:.3f} "
        f"(1/{1 / result['speed_ratio']:.0f}), peak memory x{result['memory_ratio']:.2f}; "
        f"memory half->full size x{result['memory_growth_half_to_full']:.2f}; "
        f"unchanged re-import x{result['unchanged_speedup']:.1f} faster than the first "
        f"(after one edit, read row by row: x{result['unchanged_after_edit_speedup']:.1f})"
    )
    print(
        f"first import/indexed floor: speed x{result['indexed_floor_ratio']:.3f} (the "
        f"{floor['rows']:,} rows it wrote inserted again by plain executemany per 1,000 into "
        "copies of their tables with the same indexes)"
    )
    for name, phase in big.items():
        print(f"{name}: {phase['status']}: {phase['summary']}")
    print(json.dumps(result, default=str))
    return result


if __name__ == "__main__":
    main()
