"""environments remember the replica counts set with `dockyard scale` (service -> count, JSON),
which stand over the compose file's and dockyard.yml's

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("replicas", sa.Text, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("replicas")
