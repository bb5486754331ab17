"""environments: every app gets `production` (its containers, labelled production already, are
kept as they are); jobs name the environment they deploy to; a release records its artifact (the
commit's services pinned by digest, before any environment's configuration) apart

Revision ID: 0004
Revises: 0003
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    environments = op.create_table(
        "environments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("branch", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("app", "name", name="uq_environments_name"),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("environment", sa.String(64), nullable=False, server_default="production"))
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("artifact", sa.Text, nullable=False, server_default="[]"))
    apps = op.get_bind().execute(sa.text("SELECT name FROM apps")).scalars().all()
    if apps:
        now = datetime.now(UTC)
        op.bulk_insert(environments, [{"app": a, "name": "production", "target": "local", "branch": None,
                                       "created_at": now} for a in apps])


def downgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("artifact")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("environment")
    op.drop_table("environments")
