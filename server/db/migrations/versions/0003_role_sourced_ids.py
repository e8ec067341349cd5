"""OneRoster 1.2 role identifiers: user_roles.sourced_id and user_profile_sourced_id

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_roles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sourced_id", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("user_profile_sourced_id", sa.String(length=255), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("user_roles", schema=None) as batch_op:
        batch_op.drop_column("user_profile_sourced_id")
        batch_op.drop_column("sourced_id")
