"""No SCIM index row of a complex or multi-valued attribute itself where its values answer for
it (issue 15)

A SCIM write stored a row for ``schemas``, ``name``, ``emails``… themselves besides the rows of
their values; ``pr`` and a null comparison on such an attribute read the rows of its
sub-attributes and entries too now (``scim.index.own_paths``), and a write stores the
attribute's own row only when those do not answer for it (``scim.index._presence``: no other
row, as for ``name: {}`` or ``emails: []``, or a presence that is not theirs). The upgrade
deletes the stored rows a write would no longer store: a row with no value and no entry key
whose resource holds rows of its sub-attributes (``path.sub``), entries (``path#``) or values
(``path`` with an entry key), the presence of the row being that of those rows (entries aside).

The downgrade cannot tell which rows went, and the previous release reads them: it leaves the
stale marker on each SCIM user and group, as ``0017_column_attribute_rows`` does, so the
previous release re-indexes them before its next search.

Revision ID: 0022_presence_rows
Revises: 0021_row_refs
"""

from alembic import op

revision = "0022_presence_rows"
down_revision = "0021_row_refs"
branch_labels = None
depends_on = None

STALE = "__stale__"

# the rows of ``own``'s attribute other than its own: its sub-attributes', entries', values'
_THEIRS = """
    other.resource_id = own.resource_id AND other.id <> own.id
    AND (other.path LIKE own.path || '.%' OR other.path = own.path || '#'
         OR (other.path = own.path AND other.element IS NOT NULL))
"""


def upgrade() -> None:
    op.execute(
        f"""
        DELETE FROM scim_values WHERE id IN (
            SELECT own.id FROM scim_values own
            WHERE own.element IS NULL AND own.text IS NULL AND own.number IS NULL
              AND own.path <> '{STALE}'
              AND EXISTS (SELECT 1 FROM scim_values other WHERE {_THEIRS})
              AND own.present = EXISTS (
                  SELECT 1 FROM scim_values other
                  WHERE {_THEIRS} AND other.present = TRUE AND other.path NOT LIKE '%#'
              )
        )
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        INSERT INTO scim_values (tenant_id, resource_type, resource_id, path, lead, present)
        SELECT DISTINCT tenant_id, resource_type, resource_id, '{STALE}', TRUE, TRUE
        FROM scim_values
        WHERE resource_type IN ('User', 'Group')
          AND resource_id NOT IN (SELECT resource_id FROM scim_values WHERE path = '{STALE}')
        """
    )
