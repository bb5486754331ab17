"""promotions (a release waiting to enter the next environment of its stage graph) and their
approvals

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app", sa.String(64), nullable=False, index=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("source_release", sa.Integer, nullable=False),
        sa.Column("source_environment", sa.String(64), nullable=False),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("gate", sa.Text, nullable=False),  # JSON
        sa.Column("pusher", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("release", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("environment", "source_release", name="uq_promotions_source"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("promotion", sa.Integer, nullable=False, index=True),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("approve", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("promotion", "user", name="uq_approvals_user"),
    )


def downgrade() -> None:
    op.drop_table("approvals")
    op.drop_table("promotions")
