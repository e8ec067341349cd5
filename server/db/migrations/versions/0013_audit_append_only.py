"""audit log append-only in the database (issue 11: SECURITY.md's audit promise)

The database itself refuses UPDATE and DELETE on ``audit_events`` (and TRUNCATE on
PostgreSQL) unless the same transaction holds a row of ``audit_amendments``: the marker that
only ``server.domain.audit.amending`` writes, for purge pseudonymisation, retention and
deleting a whole tenant. A row inserted by one transaction and deleted before it commits is
never seen by another one (SQLite has one writer at a time; PostgreSQL's snapshots hide
uncommitted rows), so the permission lasts one transaction at most.

A later migration that rebuilds ``audit_events`` on SQLite (``batch_alter_table`` with a
column change copies the table) drops its triggers: create them again there.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

REFUSAL = (
    "audit_events is append-only: only purge, retention and tenant deletion change it "
    "(server.domain.audit.amending)"
)

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER audit_events_no_{verb.lower()}
    BEFORE {verb} ON audit_events
    WHEN NOT EXISTS (SELECT 1 FROM audit_amendments)
    BEGIN
        SELECT RAISE(ABORT, '{REFUSAL}');
    END
    """
    for verb in ("UPDATE", "DELETE")
]

POSTGRESQL_FUNCTION = f"""
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_amendments) THEN
        RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$
"""

POSTGRESQL_TRIGGERS = [
    POSTGRESQL_FUNCTION,
    """
    CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
    """,
    """
    CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()
    """,
]


def upgrade() -> None:
    op.create_table(
        "audit_amendments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=60), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_amendments")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL_TRIGGERS if postgresql else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    op.drop_table("audit_amendments")
