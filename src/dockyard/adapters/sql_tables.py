"""The database schema (SQLAlchemy Core). Alembic migrations under ``migrations/`` create it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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
    Column("user", String(64)),  # its holder (users.name)
)

users = Table(
    "users", metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

apps = Table(
    "apps", metadata,
    Column("name", String(64), primary_key=True),
    Column("deploy_branch", String(200), nullable=False),
    Column("domains", Text, nullable=False, default="[]"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("host_access", Text, nullable=False, default="[]", server_default="[]"),  # JSON list of keys
)

environments = Table(
    "environments", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("target", String(64), nullable=False),
    Column("branch", String(200)),  # pushes to it deploy here; NULL for production: the app's deploy branch
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("replicas", Text, nullable=False, server_default="{}"),  # `dockyard scale`: {"service": count}
    Column("protected", Boolean, nullable=False, server_default="0"),  # developers may not deploy or roll back
    UniqueConstraint("app", "name", name="uq_environments_name"),
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
    Column("environment", String(64), nullable=False, default="production", server_default="production"),
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
    Column("name", String(255), nullable=False, server_default=""),  # the Dockerfile header's name
    Column("source_version", String(128), nullable=False, server_default=""),
    Column("repo", String(64), nullable=False, server_default=""),  # "": the app's own repository
    Column("branch", String(255), nullable=False, server_default=""),
)

repos = Table(  # an app's repositories besides its own (services/repos.py)
    "repos", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("name", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("app", "name", name="uq_repos_name"),
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
    # JSON: the variable names and secret versions the release used, never values
    Column("config", Text, nullable=False, default="{}", server_default="{}"),
    # JSON: the artifact, the commit's services pinned by digest before any environment's
    # configuration (hosts, variables, secrets): what a promotion releases elsewhere
    Column("artifact", Text, nullable=False, default="[]", server_default="[]"),
    # JSON: the moments of its value stream (domain/value_stream.py): commits, push, build
    Column("timeline", Text, nullable=False, default="{}", server_default="{}"),
)

variables = Table(
    "variables", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("environment", String(64), nullable=False),
    Column("key", String(128), nullable=False),
    Column("value", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("app", "environment", "key", name="uq_variables_key"),
)

# One row per version of a secret. A removed secret leaves one row (removed_at set, no
# ciphertext) so that a secret set again later goes on from the next version number.
secrets = Table(
    "secrets", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("environment", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),  # 96-bit nonce, then AES-256-GCM ciphertext and tag
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("removed_at", DateTime(timezone=True)),
    UniqueConstraint("app", "environment", "name", "version", name="uq_secrets_version"),
)

# Images garbage collection removed (services/gc.py): their rows leave ``images``; each tag's
# image id stays here, so that a version, once pushed, stays bound to its first build.
collected_images = Table(
    "collected_images", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("repository", String(255), nullable=False),
    Column("tag", String(128), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("image_id", String(80), nullable=False),
    Column("commit", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("built_at", DateTime(timezone=True)),
    Column("collected_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("repository", "tag", "digest", name="uq_collected_images_tag"),
)

audit_log = Table(  # append-only: each row's hash covers its fields and the row before's hash
    "audit_log", metadata,
    Column("id", Integer, primary_key=True),
    Column("at", String(40), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("source", String(128), nullable=False),
    Column("action", String(64), nullable=False, index=True),
    Column("app", String(64), index=True),
    Column("environment", String(64)),
    Column("detail", Text, nullable=False, server_default="{}"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),
)

webhooks = Table(
    "webhooks", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("environment", String(64)),
    Column("url", Text, nullable=False),
    Column("secret", LargeBinary, nullable=False),
    Column("events", Text, nullable=False, server_default="[]"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook", Integer, nullable=False, index=True),
    Column("event", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("response", Integer),
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
)

promotions = Table(  # a release waiting to enter the next environment of its stage graph
    "promotions", metadata,
    Column("id", Integer, primary_key=True),
    Column("app", String(64), nullable=False, index=True),
    Column("environment", String(64), nullable=False),
    Column("source_release", Integer, nullable=False),
    Column("source_environment", String(64), nullable=False),
    Column("commit", String(64), nullable=False),
    Column("gate", Text, nullable=False),
    Column("pusher", String(128), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("reason", Text, nullable=False, server_default=""),
    Column("release", Integer),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True)),
    UniqueConstraint("environment", "source_release", name="uq_promotions_source"),
)

approvals = Table(
    "approvals", metadata,
    Column("id", Integer, primary_key=True),
    Column("promotion", Integer, nullable=False, index=True),
    Column("user", String(64), nullable=False),
    Column("approve", Boolean, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("promotion", "user", name="uq_approvals_user"),
)
