"""SCIM: re-index every SCIM record once (the index now holds ``schemas``)

A data migration only: it leaves the stale marker (``server.domain.scim_index.STALE``) on each
record the SCIM attribute index holds, so the SCIM adapter re-indexes them before its next
search, as it does after a staff override. The index gained the ``schemas`` attribute, which
the RFC 7644 §3.4.2.2 example ``schemas eq "urn:…:enterprise:2.0:User"`` filters on.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STALE = "__stale__"


def upgrade() -> None:
    op.execute(
        f"""
        INSERT INTO scim_values (tenant_id, resource_type, resource_id, path, lead, present)
        SELECT DISTINCT tenant_id, resource_type, resource_id, '{STALE}', TRUE, TRUE
        FROM scim_values
        WHERE resource_id NOT IN (SELECT resource_id FROM scim_values WHERE path = '{STALE}')
        """
    )


def downgrade() -> None:
    # The markers only ask for a re-index; an older Rollcall ignores the extra values.
    pass
