"""package fingerprints: an unchanged package is not read row by row (issue 15)

An applied clean import run keeps its package's fingerprint and the roster state at which the
database was proven to equal it (:mod:`server.domain.package_runs`); the next run of the same
package with nothing changed since reports its rows unchanged without reading them one by one.
Two nullable columns (added without rebuilding the table: ``ADD COLUMN`` on SQLite) and an index.

Revision ID: 0015_package_fingerprints
Revises: 0014_roster_versions
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_package_fingerprints"
down_revision = "0014_roster_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("import_runs", sa.Column("package_fingerprint", sa.String(64), nullable=True))
    op.add_column("import_runs", sa.Column("proven_state", sa.String(80), nullable=True))
    op.create_index(
        "ix_import_runs_fingerprint", "import_runs", ["tenant_id", "package_fingerprint"]
    )


def downgrade() -> None:
    op.drop_index("ix_import_runs_fingerprint", table_name="import_runs")
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("proven_state")
        batch.drop_column("package_fingerprint")
