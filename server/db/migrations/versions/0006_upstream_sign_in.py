"""broker: how a browser session and an authorization code signed in (issue 17)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_codes") as batch:
        batch.add_column(sa.Column("amr", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("acr", sa.String(length=500), nullable=True))
    with op.batch_alter_table("browser_sessions") as batch:
        batch.add_column(sa.Column("upstream_issuer", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("browser_sessions") as batch:
        batch.drop_column("upstream_issuer")
    with op.batch_alter_table("oauth_codes") as batch:
        batch.drop_column("acr")
        batch.drop_column("amr")
