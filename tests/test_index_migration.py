"""Migrations ``0016_lean_write_indexes``, ``0017_column_attribute_rows``, ``0018_file_prints``,
``0019_active_rows``, ``0021_row_refs`` and ``0022_presence_rows``: round trips on SQLite and
PostgreSQL, down to the schema as it was, up again to exactly the schema the models describe
(issue 15)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from server.db import Base
from server.db.migrate import alembic_config, upgrade
from server.db.session import Database
from server.domain.tenants import create_tenant

REDUNDANT = {
    "users": "ix_users_connection_id",
    "user_roles": "ix_user_roles_user_id",
    "classes": "ix_classes_connection_id",
    "groups": "ix_groups_connection_id",
    "connections": "ix_connections_tenant_id",
    "staff_accounts": "ix_staff_accounts_tenant_id",
}


def _migrate(database: Database, step: str, revision: str) -> None:
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, step)(config, revision)


def _number_index(connection: Connection) -> str:
    if connection.dialect.name == "postgresql":
        query = (  # the conformance suite's schema holds another copy of the tables
            "SELECT indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() AND indexname = 'ix_scim_values_number'"
        )
    else:
        query = "SELECT sql FROM sqlite_master WHERE name = 'ix_scim_values_number'"
    return str(connection.execute(text(query)).scalar_one()).lower()


def _indexes(connection: Connection) -> dict[str, set[str]]:
    found = inspect(connection)
    return {table: {i["name"] for i in found.get_indexes(table)} for table in REDUNDANT}


def test_the_lean_write_indexes_go_down_and_up_again(database: Database) -> None:
    try:
        _migrate(database, "downgrade", "0015_package_fingerprints")
        with database.engine.connect() as connection:
            assert "where" not in _number_index(connection)
            indexes = _indexes(connection)
            assert all(name in indexes[table] for table, name in REDUNDANT.items()), indexes
    finally:
        upgrade(database.engine)
    with database.engine.connect() as connection:
        assert "number is not null" in _number_index(connection)
        indexes = _indexes(connection)
        assert not any(name in indexes[table] for table, name in REDUNDANT.items()), indexes
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


USER_ROW = "urn:ietf:params:scim:schemas:core:2.0:user"
COLUMN_ROWS = [f"{USER_ROW}:username", f"{USER_ROW}:externalid"]


def _index_rows(connection: Connection, resource_id: str) -> list[str]:
    query = text("SELECT path FROM scim_values WHERE resource_id = :r ORDER BY path")
    return list(connection.execute(query, {"r": resource_id}).scalars())


def _add_rows(connection: Connection, tenant_id: str, resource_id: str, paths: list[str]) -> None:
    connection.execute(
        text(
            "INSERT INTO scim_values (tenant_id, resource_type, resource_id, path, lead, present,"
            " text) VALUES (:t, 'User', :r, :p, TRUE, TRUE, 'x')"
        ),
        [{"t": tenant_id, "r": resource_id, "p": path} for path in paths],
    )


def _rows_go_and_the_downgrade_asks_for_a_reindex(
    database: Database, before: str, dropped: list[str]
) -> None:
    """The upgrade past ``before`` deletes the ``dropped`` index rows (a user indexed by the
    previous release keeps its other rows); the downgrade marks each indexed user stale, so
    the previous release indexes it again."""
    with database.session() as session:
        tenant_id = create_tenant(session, f"Migrated past {before}").id
    display = f"{USER_ROW}:displayname"
    try:
        with database.engine.begin() as connection:  # indexed by this release
            _add_rows(connection, tenant_id, "new-user", [display])
        _migrate(database, "downgrade", before)
        with database.engine.begin() as connection:
            assert _index_rows(connection, "new-user") == ["__stale__", display]
            _add_rows(connection, tenant_id, "old-user", [display, *dropped])
    finally:
        upgrade(database.engine)
    with database.engine.connect() as connection:
        assert _index_rows(connection, "old-user") == [display]
        assert _index_rows(connection, "new-user") == ["__stale__", display]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_column_attribute_rows_go_and_the_downgrade_asks_for_a_reindex(
    database: Database,
) -> None:
    """``0017_column_attribute_rows``: the rows of attributes a column answers."""
    _rows_go_and_the_downgrade_asks_for_a_reindex(database, "0016_lean_write_indexes", COLUMN_ROWS)


def test_the_file_prints_column_goes_down_and_up_again(database: Database) -> None:
    """``0018_file_prints``: one nullable column of ``import_runs`` (issue 15), dropped by the
    downgrade and added again by the upgrade, to exactly the schema the models describe."""
    try:
        _migrate(database, "downgrade", "0017_column_attribute_rows")
        with database.engine.connect() as connection:
            columns = {column["name"] for column in inspect(connection).get_columns("import_runs")}
            assert "file_prints" not in columns and "proven_state" in columns
    finally:
        upgrade(database.engine)
    with database.engine.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("import_runs")}
        assert "file_prints" in columns
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_active_rows_go_and_the_downgrade_asks_for_a_reindex(database: Database) -> None:
    """``0019_active_rows``: the rows of a user's ``active`` (its status column answers every
    filter and sort; the previous release sorts by those rows)."""
    _rows_go_and_the_downgrade_asks_for_a_reindex(
        database, "0018_file_prints", [f"{USER_ROW}:active"]
    )


def test_rows_standing_for_another_runs_go_down_as_copies_and_up_again(database: Database) -> None:
    """``0021_row_refs``: the downgrade stores, in place of a row standing for another run's
    rows of a file, copies of those rows (each unchanged), which the previous release reads; the
    column and its partial indexes go, and come back to exactly the schema the models
    describe."""
    from server.db import ImportRowResult, ImportRun

    with database.session() as session:
        tenant = create_tenant(session, "Row refs")
        for run_id in ("r1", "r2"):
            session.add(
                ImportRun(
                    id=run_id, tenant_id=tenant.id, actor_name="SIS", format="oneroster-csv",
                    mode="full", dry_run=False, status="applied", counts={},
                )
            )  # fmt: skip
        session.flush()
        session.add_all(
            [
                ImportRowResult(
                    run_id="r1", file="orgs.csv", row_number=n, record_key=f"o{n}",
                    outcome="created", changes={"name": [None, "x"]},
                )
                for n in (2, 3)
            ]
            + [ImportRowResult(run_id="r2", file="orgs.csv", outcome="unchanged", rows_of="r1")]
        )  # fmt: skip
    rows = "SELECT run_id, file, row_number, record_key, outcome FROM import_row_results"
    try:
        _migrate(database, "downgrade", "0020_file_rows")
        with database.engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("import_row_results")}
            assert "rows_of" not in columns
            found = connection.execute(text(f"{rows} WHERE run_id = 'r2' ORDER BY id")).all()
        assert [tuple(row) for row in found] == [
            ("r2", "orgs.csv", 2, "o2", "unchanged"),
            ("r2", "orgs.csv", 3, "o3", "unchanged"),
        ]
    finally:
        upgrade(database.engine)
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_presence_rows_their_values_answer_for_go(database: Database) -> None:
    """``0022_presence_rows``: the row of a complex or multi-valued attribute itself goes where
    the rows of its values say the same (``scim.index._presence``), and stays where they do
    not; the downgrade marks each indexed user stale, so the previous release indexes it again.
    """
    with database.session() as session:
        tenant_id = create_tenant(session, "Migrated past 0021_row_refs").id
    # (path, element, present, text) of a user indexed by the previous release
    own = [
        (f"{USER_ROW}:schemas", None, True, None),
        (f"{USER_ROW}:name", None, True, None),
        (f"{USER_ROW}:emails", None, True, None),
        (f"{USER_ROW}:ims", None, False, None),  # an entry with no value: `ims: [{}]`
        (f"{USER_ROW}:addresses", None, True, None),  # present, but none of its values is
        (f"{USER_ROW}:phonenumbers", None, False, None),  # `phoneNumbers: []`: nothing else
        ("urn:x:user:grades", None, False, None),  # `grades: []`
    ]
    theirs = [
        (f"{USER_ROW}:displayname", None, True, "ada"),
        (f"{USER_ROW}:schemas", "e-1", True, USER_ROW),
        (f"{USER_ROW}:name.givenname", None, True, "ada"),
        (f"{USER_ROW}:emails#", "e-2", True, None),
        (f"{USER_ROW}:emails.value", "e-2", True, "ada@x.example"),
        (f"{USER_ROW}:ims#", "e-3", True, None),
        (f"{USER_ROW}:addresses#", "e-4", True, None),
        (f"{USER_ROW}:addresses.formatted", "e-4", False, ""),
    ]
    kept = [own[4], own[5], own[6]]
    try:
        _migrate(database, "downgrade", "0021_row_refs")
        with database.engine.begin() as connection:
            _add_values(connection, tenant_id, "old-user", own + theirs)
    finally:
        upgrade(database.engine)
    with database.engine.connect() as connection:
        assert _index_rows(connection, "old-user") == sorted(row[0] for row in kept + theirs)
    try:
        _migrate(database, "downgrade", "0021_row_refs")
        with database.engine.connect() as connection:
            assert "__stale__" in _index_rows(connection, "old-user")
    finally:
        upgrade(database.engine)


def _add_values(
    connection: Connection,
    tenant_id: str,
    resource_id: str,
    rows: list[tuple[str, str | None, bool, str | None]],
) -> None:
    connection.execute(
        text(
            "INSERT INTO scim_values (tenant_id, resource_type, resource_id, path, element, lead,"
            " present, text) VALUES (:t, 'User', :r, :p, :e, TRUE, :present, :text)"
        ),
        [
            {"t": tenant_id, "r": resource_id, "p": p, "e": e, "present": present, "text": value}
            for p, e, present, value in rows
        ],
    )
