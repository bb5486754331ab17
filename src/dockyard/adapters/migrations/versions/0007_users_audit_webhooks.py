"""users and their roles (tokens belong to a user), protected environments, the audit log (an
append-only hash chain) and outgoing webhooks with their deliveries

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("user", sa.String(64), nullable=True))
    # every token so far was its own holder: one user each, with the token's role
    op.execute("INSERT INTO users (name, role, created_at) SELECT name, role, created_at FROM tokens")
    op.execute('UPDATE tokens SET "user" = name')
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.String(40), nullable=False),  # ISO 8601, UTC, as hashed
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),  # from where: an address, "git push", "dockyard"
        sa.Column("action", sa.String(64), nullable=False, index=True),
        sa.Column("app", sa.String(64), index=True),
        sa.Column("environment", sa.String(64)),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),  # JSON
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app", sa.String(64), nullable=False, index=True),
        sa.Column("environment", sa.String(64)),  # NULL: every environment of the app
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("secret", sa.LargeBinary, nullable=False),  # sealed (adapters/secret_box.py)
        sa.Column("events", sa.Text, nullable=False, server_default="[]"),  # JSON list; [] every event
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("webhook", sa.Integer, nullable=False, index=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),  # pending, delivered, failed
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("response", sa.Integer),  # the last HTTP status
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("audit_log")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("protected")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("user")
    op.drop_table("users")
