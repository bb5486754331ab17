"""variables and secrets per (app, environment); releases.config: the variable names and secret
versions a release used (none for existing releases)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("releases") as batch:
        batch.add_column(sa.Column("config", sa.Text, nullable=False, server_default="{}"))
    op.create_table(
        "variables",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app", sa.String(64), nullable=False, index=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("app", "environment", "key", name="uq_variables_key"),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app", sa.String(64), nullable=False, index=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("removed_at", TZ),
        sa.UniqueConstraint("app", "environment", "name", "version", name="uq_secrets_version"),
    )


def downgrade() -> None:
    op.drop_table("secrets")
    op.drop_table("variables")
    with op.batch_alter_table("releases") as batch:
        batch.drop_column("config")
