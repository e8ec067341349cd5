"""file rows: how many report rows of each file an applied clean run stored (issue 15)

A run that leaves a file unread copies the proven run's stored rows of the file
(:func:`server.domain.import_runs.plain_rows`); the proven run now keeps, beside each file's
fingerprint, how many rows of the file it stored as reading the file row by row reports them,
so the next run need not read them all to know. One nullable JSON column, added without
rebuilding the table (``ADD COLUMN`` on SQLite); runs remembered before it are read as before.

Revision ID: 0020_file_rows
Revises: 0019_active_rows
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020_file_rows"
down_revision = "0019_active_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "import_runs",
        sa.Column(
            "file_rows",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("file_rows")
