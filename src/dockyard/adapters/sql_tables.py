"""The database schema (SQLAlchemy Core). Alembic migrations under ``migrations/`` create it."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Integer, MetaData, String, Table, Text

metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))

tokens = Table(
    "tokens", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True)),
)

apps = Table(
    "apps", metadata,
    Column("name", String(64), primary_key=True),
    Column("deploy_branch", String(200), nullable=False),
    Column("domains", Text, nullable=False, default="[]"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("host_access", Text, nullable=False, default="[]", server_default="[]"),  # JSON list of keys
)

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("app", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False, index=True),
    Column("payload", Text, nullable=False),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

job_logs = Table(
    "job_logs", metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", Integer, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("line", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

images = Table(
    "images", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("repository", String(255), nullable=False),
    Column("version", String(128), nullable=False),
    Column("tag", String(128), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("image_id", String(80), nullable=False),
    Column("commit", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("dockerfile", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

releases = Table(
    "releases", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("environment", String(64), nullable=False),
    Column("commit", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("services", Text, nullable=False),
    Column("job_id", Integer),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)
