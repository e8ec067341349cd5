"""privacy: the record of retention job runs; who acted via a connection in the audit log

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import server.db.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("via", sa.String(length=255), nullable=True))
    op.create_table(
        "purge_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("ran_at", server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "counts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_purge_runs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purge_runs")),
    )
    with op.batch_alter_table("purge_runs", schema=None) as batch_op:
        batch_op.create_index("ix_purge_runs_tenant_ran", ["tenant_id", "ran_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("purge_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_purge_runs_tenant_ran")
    op.drop_table("purge_runs")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("via")
