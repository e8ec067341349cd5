"""No SCIM index rows for attributes a record's column answers (issue 15)

Every filter and sort on a User's ``userName`` or ``externalId``, or a Group's ``displayName``
or ``externalId``, compares the record's own folded column (``scim.filters.column_for``,
``scim.values.COLUMN_PATHS``), never ``scim_values``; the rows SCIM writes stopped holding
them, and the upgrade deletes those already stored: two of a created user's 14 entries in
``ix_scim_values_lookup``, written by every create and read by nothing.

The downgrade cannot rebuild the rows in SQL (their text is each value's comparison form,
worked out in Python), and the previous release never reads them either: it leaves the stale
marker on each SCIM user and group, as ``0002_scim_reindex`` did, so the previous release
re-indexes them before its next search, as it does after a staff override.

Revision ID: 0017_column_attribute_rows
Revises: 0016_lean_write_indexes
"""

from alembic import op

revision = "0017_column_attribute_rows"
down_revision = "0016_lean_write_indexes"
branch_labels = None
depends_on = None

STALE = "__stale__"
USER = "urn:ietf:params:scim:schemas:core:2.0:user"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:group"
PATHS = (f"{USER}:username", f"{USER}:externalid", f"{GROUP}:externalid", f"{GROUP}:displayname")


def upgrade() -> None:
    listed = ", ".join(f"'{path}'" for path in PATHS)
    op.execute(f"DELETE FROM scim_values WHERE path IN ({listed})")


def downgrade() -> None:
    op.execute(
        f"""
        INSERT INTO scim_values (tenant_id, resource_type, resource_id, path, lead, present)
        SELECT DISTINCT tenant_id, resource_type, resource_id, '{STALE}', TRUE, TRUE
        FROM scim_values
        WHERE resource_type IN ('User', 'Group')
          AND resource_id NOT IN (SELECT resource_id FROM scim_values WHERE path = '{STALE}')
        """
    )
