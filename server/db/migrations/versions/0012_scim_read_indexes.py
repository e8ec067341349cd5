"""SCIM and OneRoster reads: indexes the lookups and deep pages walk (issue 15)

- ``externalId eq`` (what Entra ID matches on before every write) names the tenant, the
  connection and the value; an index on all three lets SQLite's planner, which has no
  statistics on a fresh database, pick it over the tenant's username index (a walk of every
  user of the tenant).

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

EXTERNAL_ID_TABLES = ("users", "classes", "groups")


def upgrade() -> None:
    for table in EXTERNAL_ID_TABLES:
        op.create_index(
            f"ix_{table}_tenant_connection_external_id",
            table,
            ["tenant_id", "connection_id", "external_id_folded"],
        )


def downgrade() -> None:
    for table in EXTERNAL_ID_TABLES:
        op.drop_index(f"ix_{table}_tenant_connection_external_id", table_name=table)
