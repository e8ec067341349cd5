"""Fewer index pages per write (issue 15): a SCIM create wrote 84 database pages, 53 of them
for its attribute index rows.

- ``ix_scim_values_number`` holds only the rows that have a number (most rows hold text): a
  numeric filter compares ``number``, which implies ``number IS NOT NULL``, so both databases
  still use it, and a text value no longer writes an entry into it.
- Six single-column indexes go that another index of their table leads with (the composite
  serves the same lookups and foreign key checks): a user's ``connection_id`` and a role's
  ``user_id`` were written by every create.

Revision ID: 0016_lean_write_indexes
Revises: 0015_package_fingerprints
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_lean_write_indexes"
down_revision = "0015_package_fingerprints"
branch_labels = None
depends_on = None

NUMBER_COLUMNS = ["tenant_id", "resource_type", "path", "number"]
HAS_NUMBER = sa.text("number IS NOT NULL")

# (index, table, column), each led by: ix_users_connection_external_id, uq_user_roles,
# ix_classes_connection_external_id, ix_groups_connection_external_id,
# uq_connections_tenant_name, uq_staff_accounts_tenant_username
REDUNDANT = [
    ("ix_users_connection_id", "users", "connection_id"),
    ("ix_user_roles_user_id", "user_roles", "user_id"),
    ("ix_classes_connection_id", "classes", "connection_id"),
    ("ix_groups_connection_id", "groups", "connection_id"),
    ("ix_connections_tenant_id", "connections", "tenant_id"),
    ("ix_staff_accounts_tenant_id", "staff_accounts", "tenant_id"),
]


def upgrade() -> None:
    op.drop_index("ix_scim_values_number", table_name="scim_values")
    op.create_index(
        "ix_scim_values_number",
        "scim_values",
        NUMBER_COLUMNS,
        sqlite_where=HAS_NUMBER,
        postgresql_where=HAS_NUMBER,
    )
    for index, table, _ in REDUNDANT:
        op.drop_index(index, table_name=table)


def downgrade() -> None:
    for index, table, column in REDUNDANT:
        op.create_index(index, table, [column])
    op.drop_index("ix_scim_values_number", table_name="scim_values")
    op.create_index("ix_scim_values_number", "scim_values", NUMBER_COLUMNS)
