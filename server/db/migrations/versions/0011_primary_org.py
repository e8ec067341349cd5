"""users.primary_org_id: OneRoster 1.2 ``primaryOrg`` as the source names it (issue 10)

Existing users get the org of a primary role (what was served before; the lowest org id when
they have several, else that of any role), as server/domain/users.py chooses for a source
that names none.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BACKFILL = """
UPDATE users SET primary_org_id = COALESCE(
    (
        SELECT MIN(user_roles.org_id) FROM user_roles
        WHERE user_roles.user_id = users.id AND user_roles.role_type = 'primary'
    ),
    (SELECT MIN(user_roles.org_id) FROM user_roles WHERE user_roles.user_id = users.id)
)
"""


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("primary_org_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_primary_org_id"), ["primary_org_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_users_primary_org_id_orgs"),
            "orgs",
            ["primary_org_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_users_primary_org_id_orgs"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_users_primary_org_id"))
        batch_op.drop_column("primary_org_id")
