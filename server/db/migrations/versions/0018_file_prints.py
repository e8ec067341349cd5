"""file prints: an unchanged file of a package is not read row by row (issue 15)

An applied clean import run keeps, besides its package's fingerprint, one fingerprint per file
(:mod:`server.domain.package_runs`): the next run at the state the run was proven at does not
read a file whose fingerprint it shares when nothing that file's rows name has changed since
(the 1% delta: only ``users.csv`` changed). One nullable JSON column, added without rebuilding
the table (``ADD COLUMN`` on SQLite).

Revision ID: 0018_file_prints
Revises: 0017_column_attribute_rows
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018_file_prints"
down_revision = "0017_column_attribute_rows"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "import_runs",
        sa.Column(
            "file_prints",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("file_prints")
