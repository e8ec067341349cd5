"""row refs: a file left unread stores one report row standing for the proven run's rows (issue 15)

A run that leaves a file unread reported each of its rows unchanged by copying the proven
run's stored rows of the file (``0020_file_rows``): a million rows at 100,000 users, written
under SQLite's write lock. It now stores one row whose ``rows_of`` names the run whose rows of
``file`` it stands for; readers expand it (:func:`server.domain.import_runs.stored_rows`).
One nullable column, added without rebuilding the table, and two partial indexes that hold
only such rows.

The downgrade copies the rows each one stands for into its run (after that run's other rows:
the previous release reads them in id order) and deletes it.

Revision ID: 0021_row_refs
Revises: 0020_file_rows
"""

import sqlalchemy as sa
from alembic import op

revision = "0021_row_refs"
down_revision = "0020_file_rows"
branch_labels = None
depends_on = None

REFS = "rows_of IS NOT NULL"


def upgrade() -> None:
    op.add_column("import_row_results", sa.Column("rows_of", sa.String(36), nullable=True))
    for name, columns in (("refs", ["run_id", "id"]), ("rows_of", ["rows_of", "file"])):
        op.create_index(
            f"ix_import_row_results_{name}",
            "import_row_results",
            columns,
            sqlite_where=sa.text(REFS),
            postgresql_where=sa.text(REFS),
        )


def downgrade() -> None:
    op.execute(
        """
        INSERT INTO import_row_results
            (run_id, file, row_number, record_key, outcome, code, message, changes)
        SELECT r.run_id, t.file, t.row_number, t.record_key, 'unchanged', NULL, NULL, '{}'
        FROM import_row_results r
        JOIN import_row_results t
          ON t.run_id = r.rows_of AND t.file = r.file AND t.rows_of IS NULL
        WHERE r.rows_of IS NOT NULL AND r.rows_of != r.run_id
        ORDER BY r.id, t.id
        """
    )
    op.execute("DELETE FROM import_row_results WHERE rows_of IS NOT NULL")
    op.drop_index("ix_import_row_results_rows_of", table_name="import_row_results")
    op.drop_index("ix_import_row_results_refs", table_name="import_row_results")
    with op.batch_alter_table("import_row_results") as batch:
        batch.drop_column("rows_of")
