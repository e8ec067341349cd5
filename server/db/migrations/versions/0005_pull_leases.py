"""operations: the pull lease of a connection

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import server.db.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pull_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("pull_until", server.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_column("pull_until")
        batch_op.drop_column("pull_owner")
