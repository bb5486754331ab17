"""an app's repositories besides its own (source repos, the deploy repo's name), and what names
each built image and where it came from

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("app", "name", name="uq_repos_name"),
    )
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("name", sa.String(255), nullable=False, server_default=""))
        batch.add_column(sa.Column("source_version", sa.String(128), nullable=False, server_default=""))
        batch.add_column(sa.Column("repo", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("branch", sa.String(255), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        for column in ("branch", "repo", "source_version", "name"):
            batch.drop_column(column)
    op.drop_table("repos")
