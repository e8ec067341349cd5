"""roster versions: a kept OneRoster page total is checked, not recounted (issue 15)

Every write to a table a OneRoster read counts (users and their roles and grades, orgs,
academic sessions, courses, classes and their terms, enrollments) moves the roster state, in
the same transaction as the write and whatever wrote it (the domain, a bulk import, a
cascade):

- SQLite: no trigger. Row triggers made a bulk insert 2-3x slower there (measured: 50,000
  users 4.5 s -> 10.8 s), so the first write to these tables in each transaction bumps one
  row for the whole database (``tenant_id = '*'``) from SQLAlchemy's statement hook
  (:mod:`server.domain.roster_reads`), in that transaction.
- PostgreSQL: a statement trigger (with its transition table) inserts one ``roster_changes``
  row per tenant it touched, so concurrent writers share no row lock; past 256 rows a tenant's
  changes are folded into ``roster_versions.version`` (``FOR UPDATE SKIP LOCKED``: two folds
  never wait on each other).

A reader reads (epoch, version, count and highest id of the changes) in one statement
(:func:`server.domain.roster_state.roster_state`): it differs after every committed write.

Revision ID: 0014_roster_versions
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_roster_versions"
down_revision = "0013"
branch_labels = None
depends_on = None

# table -> (how a changed row names its tenant, the join that finds it)
WATCHED = {
    "users": ("c.tenant_id", ""),
    "orgs": ("c.tenant_id", ""),
    "academic_sessions": ("c.tenant_id", ""),
    "courses": ("c.tenant_id", ""),
    "classes": ("c.tenant_id", ""),
    "enrollments": ("c.tenant_id", ""),
    "user_roles": ("p.tenant_id", "JOIN users p ON p.id = c.user_id"),
    "user_grades": ("p.tenant_id", "JOIN users p ON p.id = c.user_id"),
    "class_terms": ("p.tenant_id", "JOIN classes p ON p.id = c.class_id"),
}
VERBS = ("INSERT", "UPDATE", "DELETE")
FOLD_AFTER = 256


POSTGRESQL_FOLD = """
CREATE FUNCTION roster_fold(t varchar) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    WITH gone AS (
        DELETE FROM roster_changes WHERE id IN (
            SELECT id FROM roster_changes WHERE tenant_id = t FOR UPDATE SKIP LOCKED
        ) RETURNING 1
    )
    SELECT count(*) INTO folded FROM gone;
    IF folded > 0 THEN
        INSERT INTO roster_versions (tenant_id, epoch, version)
        VALUES (t, md5(random()::text || clock_timestamp()::text), folded)
        ON CONFLICT (tenant_id) DO UPDATE SET version = roster_versions.version + folded;
    END IF;
END
$$
"""


def _postgresql_function(table: str) -> str:
    tenant, join = WATCHED[table]
    return f"""
CREATE FUNCTION roster_changed_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t varchar;
BEGIN
    FOR t IN SELECT DISTINCT {tenant} FROM changed_rows c {join} LOOP
        INSERT INTO roster_changes (tenant_id) VALUES (t);
        IF (SELECT count(*) FROM roster_changes WHERE tenant_id = t) > {FOLD_AFTER} THEN
            PERFORM roster_fold(t);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$
"""


def _postgresql_trigger(table: str, verb: str) -> str:
    transition = "OLD" if verb == "DELETE" else "NEW"
    return f"""
    CREATE TRIGGER roster_version_{table}_{verb.lower()}
    AFTER {verb} ON {table} REFERENCING {transition} TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION roster_changed_{table}()
    """


def upgrade() -> None:
    op.create_table(
        "roster_versions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("epoch", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_roster_versions")),
    )
    op.create_table(
        "roster_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_changes")),
    )
    op.create_index("ix_roster_changes_tenant", "roster_changes", ["tenant_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRESQL_FOLD)
        for table in WATCHED:
            op.execute(_postgresql_function(table))
            for verb in VERBS:
                op.execute(_postgresql_trigger(table, verb))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            for verb in VERBS:
                name = f"roster_version_{table}_{verb.lower()}"
                op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS roster_changed_{table}()")
        op.execute("DROP FUNCTION IF EXISTS roster_fold(varchar)")
    op.drop_index("ix_roster_changes_tenant", table_name="roster_changes")
    op.drop_table("roster_changes")
    op.drop_table("roster_versions")
