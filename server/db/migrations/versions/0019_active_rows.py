"""No SCIM index rows of a user's ``active`` (issue 15)

Every filter on a User's ``active`` compares its ``status`` column (``scim.filters._active``)
and a sort by it now reads that column too (``scim.filters.sort_expression``,
``scim.values.STATUS_PATHS``): the rows SCIM writes stopped holding it, and a PATCH of
``active`` writes no index row. The upgrade deletes those already stored, read by nothing.

The downgrade cannot rebuild them in SQL (their text is worked out in Python) and the previous
release sorts by them: it leaves the stale marker on each SCIM user and group, as
``0017_column_attribute_rows`` does, so the previous release re-indexes them before its next
search.

Revision ID: 0019_active_rows
Revises: 0018_file_prints
"""

from alembic import op

revision = "0019_active_rows"
down_revision = "0018_file_prints"
branch_labels = None
depends_on = None

STALE = "__stale__"
ACTIVE = "urn:ietf:params:scim:schemas:core:2.0:user:active"


def upgrade() -> None:
    op.execute(f"DELETE FROM scim_values WHERE path = '{ACTIVE}'")


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
