"""imports: a stored content hash per synced record, so an unchanged row costs next to nothing
(issue 15)

Revision ID: 0008_import_hashes
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_import_hashes"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLES = ("users", "orgs", "academic_sessions", "courses", "classes", "enrollments")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("content_hash")
