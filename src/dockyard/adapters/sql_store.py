"""The store: dockyard's state in SQL (SQLite under DOCKYARD_HOME now; PostgreSQL can follow)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, create_engine, delete, event, exists, func, insert, inspect, select, text, update
from sqlalchemy.exc import IntegrityError

from dockyard.adapters import sql_tables as t
from dockyard.adapters.sql_audit import SqlAuditLog
from dockyard.adapters.sql_promotions import SqlPromotions
from dockyard.adapters.sql_repos import SqlRepos
from dockyard.adapters.sql_users import SqlUsers
from dockyard.adapters.sql_webhooks import SqlWebhooks
from dockyard.domain.errors import Conflict, NotFound, Unavailable
from dockyard.domain.model import (
    DEFAULT_ENVIRONMENT,
    App,
    BuiltImage,
    Environment,
    Job,
    JobStatus,
    ReleaseStatus,
    SealedSecret,
    SecretVersion,
    ServiceSpec,
)
from dockyard.domain.records import ReleaseRecord, release_from_row


def now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# users and tokens: adapters/sql_users.py; the audit log: sql_audit.py; outgoing webhooks: sql_webhooks.py
class SqlStore(SqlUsers, SqlAuditLog, SqlWebhooks, SqlPromotions, SqlRepos):
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._claim_lock = threading.Lock()
        self._secrets_lock = threading.Lock()  # version numbers are taken one at a time

    def migrate(self, in_child: bool = False) -> None:
        """Bring the schema to the newest migration. Alembic is loaded only when there is
        something to do, and with ``in_child`` in a child process: the server idles for most of
        its life, and Alembic would keep ~10 MB of its memory for good."""
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        if self._schema_version() == _newest_migration():
            return
        if in_child:
            done = subprocess.run([sys.executable, "-m", "dockyard.adapters.sql_store", self.url],
                                  capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise Unavailable(f"the database could not be migrated: {done.stderr.strip()[-1500:]}",
                                  "see the error above; the database was left as it was")
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url)
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def _schema_version(self) -> str | None:
        with self.engine.connect() as c:
            if not inspect(c).has_table("alembic_version"):
                return None
            return c.execute(text("SELECT version_num FROM alembic_version")).scalar()

    # -- installation ------------------------------------------------------------
    def installation_id(self) -> str:
        with self.engine.begin() as c:
            value = c.execute(select(t.meta.c.value).where(t.meta.c.key == "installation")).scalar()
            if value is None:
                value = secrets.token_hex(6)
                c.execute(insert(t.meta).values(key="installation", value=value))
            return str(value)

    # -- apps -----------------------------------------------------------------------------
    @staticmethod
    def _app(row: Any) -> App:
        return App(name=row.name, deploy_branch=row.deploy_branch, domains=tuple(json.loads(row.domains)),
                   created_at=_utc(row.created_at), host_access=tuple(json.loads(row.host_access)))

    def create_app(self, app: App) -> App:
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.apps).values(name=app.name, deploy_branch=app.deploy_branch,
                                                domains=json.dumps(list(app.domains)), created_at=now(),
                                                host_access=json.dumps(list(app.host_access))))
                c.execute(insert(t.environments).values(app=app.name, name=DEFAULT_ENVIRONMENT, target="local",
                                                        branch=None, created_at=now()))
        except IntegrityError:
            raise Conflict(f"app {app.name!r} already exists", "pick another name, or push to its remote") from None
        return self.get_app(app.name)

    def get_app(self, name: str) -> App:
        with self.engine.connect() as c:
            row = c.execute(select(t.apps).where(t.apps.c.name == name)).first()
        if row is None:
            raise NotFound(f"no app named {name!r}", "list apps with: dockyard apps, or create it: dockyard apps create NAME")
        return self._app(row)

    def list_apps(self) -> list[App]:
        with self.engine.connect() as c:
            return [self._app(r) for r in c.execute(select(t.apps).order_by(t.apps.c.name))]

    def set_domains(self, name: str, domains: tuple[str, ...]) -> App:
        self.get_app(name)
        with self.engine.begin() as c:
            c.execute(update(t.apps).where(t.apps.c.name == name).values(domains=json.dumps(list(domains))))
        return self.get_app(name)

    def set_host_access(self, name: str, keys: tuple[str, ...]) -> App:
        """The host-access compose keys allowed for the app (replacing the previous ones)."""
        with self.engine.begin() as c:
            if c.execute(update(t.apps).where(t.apps.c.name == name)
                         .values(host_access=json.dumps(list(keys)))).rowcount == 0:
                self.get_app(name)  # raises NotFound
        return self.get_app(name)

    def delete_app(self, name: str) -> None:
        """The app and its records; a new app of the same name starts afresh."""
        with self.engine.begin() as c:
            job_ids = select(t.jobs.c.id).where(t.jobs.c.app == name)
            c.execute(delete(t.job_logs).where(t.job_logs.c.job_id.in_(job_ids)))
            for table in (t.jobs, t.releases, t.images, t.variables, t.secrets, t.environments, t.repos):
                c.execute(delete(table).where(table.c.app == name))
            self._forget_webhooks(c, name)
            c.execute(delete(t.apps).where(t.apps.c.name == name))

    # -- environments ---------------------------------------------------------------------
    @staticmethod
    def _environment(row: Any) -> Environment:
        return Environment(app=row.app, name=row.name, target=row.target, branch=row.branch,
                           created_at=_utc(row.created_at),
                           replicas=tuple(sorted(json.loads(row.replicas or "{}").items())),
                           protected=bool(row.protected))

    def environments(self, app: str) -> list[Environment]:
        """The app's environments, production first, then by name."""
        e = t.environments.c
        with self.engine.connect() as c:
            rows = c.execute(select(t.environments).where(e.app == app)
                             .order_by((e.name != DEFAULT_ENVIRONMENT), e.name))
            return [self._environment(r) for r in rows]

    def get_environment(self, app: str, name: str) -> Environment:
        e = t.environments.c
        with self.engine.connect() as c:
            row = c.execute(select(t.environments).where(e.app == app, e.name == name)).first()
        if row is None:
            self.get_app(app)  # raises NotFound for a missing app first
            raise NotFound(f"{app} has no environment {name!r}",
                           f"list them with: dockyard envs {app}, or add it: dockyard envs create {app} {name}")
        return self._environment(row)

    def add_environment(self, environment: Environment) -> Environment:
        self.get_app(environment.app)
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.environments).values(app=environment.app, name=environment.name,
                                                        target=environment.target, branch=environment.branch,
                                                        created_at=now()))
        except IntegrityError:
            raise Conflict(f"{environment.app} has an environment named {environment.name!r} already",
                           "pick another name, or remove it first") from None
        return self.get_environment(environment.app, environment.name)

    def set_environment_branch(self, app: str, name: str, branch: str | None) -> Environment:
        e = t.environments.c
        with self.engine.begin() as c:
            if c.execute(update(t.environments).where(e.app == app, e.name == name)
                         .values(branch=branch)).rowcount == 0:
                self.get_environment(app, name)  # raises NotFound
        return self.get_environment(app, name)

    def set_environment_replicas(self, app: str, name: str, replicas: Mapping[str, int]) -> Environment:
        e = t.environments.c
        with self.engine.begin() as c:
            if c.execute(update(t.environments).where(e.app == app, e.name == name)
                         .values(replicas=json.dumps(dict(sorted(replicas.items()))))).rowcount == 0:
                self.get_environment(app, name)  # raises NotFound
        return self.get_environment(app, name)

    def set_environment_protected(self, app: str, name: str, protected: bool) -> Environment:
        e = t.environments.c
        with self.engine.begin() as c:
            if c.execute(update(t.environments).where(e.app == app, e.name == name)
                         .values(protected=protected)).rowcount == 0:
                self.get_environment(app, name)  # raises NotFound
        return self.get_environment(app, name)

    def remove_environment(self, app: str, name: str) -> None:
        """The environment and what belongs to it alone: its releases, variables and secrets."""
        self.get_environment(app, name)
        with self.engine.begin() as c:
            for table in (t.releases, t.variables, t.secrets):
                c.execute(delete(table).where(table.c.app == app, table.c.environment == name))
            self._forget_webhooks(c, app, name)
            c.execute(delete(t.environments).where(t.environments.c.app == app, t.environments.c.name == name))

    # -- jobs -----------------------------------------------------------------------------
    @staticmethod
    def _job(row: Any) -> Job:
        return Job(id=row.id, kind=row.kind, app=row.app, status=JobStatus(row.status),
                   payload=json.loads(row.payload), error=row.error, attempts=row.attempts,
                   created_at=_utc(row.created_at), started_at=_utc(row.started_at),
                   finished_at=_utc(row.finished_at), environment=row.environment)

    def enqueue(self, kind: str, app: str, payload: dict[str, str], environment: str = DEFAULT_ENVIRONMENT) -> Job:
        with self.engine.begin() as c:
            job_id = c.execute(insert(t.jobs).values(kind=kind, app=app, status=JobStatus.QUEUED,
                                                     payload=json.dumps(payload), attempts=0,
                                                     created_at=now(), environment=environment)).inserted_primary_key
        assert job_id is not None
        return self.get_job(int(job_id[0]))

    def start_job(self, kind: str, app: str, payload: dict[str, str], environment: str = DEFAULT_ENVIRONMENT) -> Job:
        """A job that runs where it was asked (a one-off container, attached to its caller): made
        running, never claimed by a worker."""
        with self.engine.begin() as c:
            key = c.execute(insert(t.jobs).values(kind=kind, app=app, status=JobStatus.RUNNING, payload=json.dumps(payload),
                                                  attempts=1, created_at=now(), started_at=now(),
                                                  environment=environment)).inserted_primary_key
        assert key is not None
        return self.get_job(int(key[0]))

    def record_failed_job(self, kind: str, app: str, payload: dict[str, str], error: str, line: str) -> Job:
        """A job that failed before it could run (a refused push): never seen queued by a worker."""
        with self.engine.begin() as c:
            key = c.execute(insert(t.jobs).values(kind=kind, app=app, status=JobStatus.FAILED, error=error,
                                                  payload=json.dumps(payload), attempts=0, created_at=now(),
                                                  finished_at=now())).inserted_primary_key
            assert key is not None
            c.execute(insert(t.job_logs).values(job_id=int(key[0]), line=line, at=now()))
        return self.get_job(int(key[0]))

    def get_job(self, job_id: int) -> Job:
        with self.engine.connect() as c:
            row = c.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"no job {job_id}", "list jobs with: dockyard jobs")
        return self._job(row)

    def list_jobs(self, app: str | None = None, limit: int = 50, environment: str | None = None) -> list[Job]:
        q = select(t.jobs).order_by(t.jobs.c.id.desc()).limit(limit)
        if app:
            q = q.where(t.jobs.c.app == app)
        if environment:
            q = q.where(t.jobs.c.environment == environment)
        with self.engine.connect() as c:
            return [self._job(r) for r in c.execute(q)]

    def pending_deploy(self, app: str, commit: str, environment: str = DEFAULT_ENVIRONMENT) -> Job | None:
        """A deploy of this commit to this environment that is queued or running, if any."""
        for job in self.list_jobs(app, limit=10, environment=environment):
            if job.kind == "deploy" and job.payload.get("commit") == commit and not job.status.finished:
                return job
        return None

    def claim_next(self) -> Job | None:
        """The oldest queued job of an app's environment with no running job, marked running:
        jobs of one environment run one at a time, environments side by side."""
        running = t.jobs.alias("running")
        busy = exists().where(running.c.status == JobStatus.RUNNING, running.c.app == t.jobs.c.app,
                              running.c.environment == t.jobs.c.environment)
        with self._claim_lock, self.engine.begin() as c:
            row = c.execute(
                select(t.jobs).where(and_(t.jobs.c.status == JobStatus.QUEUED, ~busy))
                .order_by(t.jobs.c.id).limit(1)
            ).first()
            if row is None:
                return None
            c.execute(update(t.jobs).where(t.jobs.c.id == row.id).values(
                status=JobStatus.RUNNING, started_at=now(), attempts=row.attempts + 1))
        return self.get_job(row.id)

    def running_count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(t.jobs)
                                 .where(t.jobs.c.status == JobStatus.RUNNING)).scalar() or 0)

    def requeue_interrupted(self, max_attempts: int) -> tuple[list[int], list[int]]:
        """Jobs left running by a server that stopped: queued again to resume, unless they were
        attempted ``max_attempts`` times already (a job that crashes the server would otherwise
        crash it at every start): those fail. Returns (requeued, failed) job ids."""
        with self.engine.begin() as c:
            rows = list(c.execute(select(t.jobs.c.id, t.jobs.c.attempts).where(t.jobs.c.status == JobStatus.RUNNING)))
            again = [r.id for r in rows if r.attempts < max_attempts]
            failed = [r.id for r in rows if r.attempts >= max_attempts]
            if again:
                c.execute(update(t.jobs).where(t.jobs.c.id.in_(again)).values(status=JobStatus.QUEUED))
            if failed:
                c.execute(update(t.jobs).where(t.jobs.c.id.in_(failed)).values(
                    status=JobStatus.FAILED, finished_at=now(),
                    error=f"dockyard stopped while this job ran, {max_attempts} times: it is not tried again"))
        return again, failed

    def finish_job(self, job_id: int, status: JobStatus, error: str | None = None) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(status=status, error=error,
                                                                           finished_at=now()))

    def release_of_job(self, job_id: int) -> int | None:
        with self.engine.connect() as c:
            found = c.execute(select(func.max(t.releases.c.id)).where(t.releases.c.job_id == job_id)).scalar()
        return int(found) if found is not None else None

    def append_log(self, job_id: int, line: str) -> None:
        with self.engine.begin() as c:
            c.execute(insert(t.job_logs).values(job_id=job_id, line=line, at=now()))

    def job_logs(self, job_id: int, after: int = 0) -> list[tuple[int, str]]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.job_logs.c.id, t.job_logs.c.line)
                             .where(t.job_logs.c.job_id == job_id, t.job_logs.c.id > after)
                             .order_by(t.job_logs.c.id))
            return [(r.id, r.line) for r in rows]

    # -- images ---------------------------------------------------------------------------
    def add_image(self, image: BuiltImage) -> None:
        values = asdict(image)
        values["created_at"] = now()
        with self.engine.begin() as c:
            c.execute(insert(t.images).values(**values))

    def list_images(self, app: str) -> list[BuiltImage]:
        with self.engine.connect() as c:
            rows = c.execute(select(t.images).where(t.images.c.app == app).order_by(t.images.c.id.desc()))
            images = [BuiltImage(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in rows]
            return [replace(i, created_at=_utc(i.created_at)) for i in images]

    def collect_images(self, app: str, repository: str, digest: str) -> int:
        """The rows of a manifest garbage collection removed move to ``collected_images``."""
        i, g = t.images.c, t.collected_images.c
        with self.engine.begin() as c:
            rows = list(c.execute(select(t.images).where(i.app == app, i.repository == repository, i.digest == digest)))
            for r in rows:
                if c.execute(select(g.id).where(g.repository == r.repository, g.tag == r.tag, g.digest == r.digest)
                             ).first() is None:
                    c.execute(insert(t.collected_images).values(
                        app=r.app, repository=r.repository, tag=r.tag, digest=r.digest, image_id=r.image_id,
                        commit=r.commit, size=r.size, built_at=r.created_at, collected_at=now()))
            c.execute(delete(t.images).where(i.app == app, i.repository == repository, i.digest == digest))
        return len(rows)

    def collected_image(self, repository: str, tag: str) -> str | None:
        g = t.collected_images.c
        with self.engine.connect() as c:
            value = c.execute(select(g.image_id).where(g.repository == repository, g.tag == tag)
                              .order_by(g.id).limit(1)).scalar()
        return str(value) if value is not None else None

    # -- releases -------------------------------------------------------------------------
    def create_release(self, app: str, environment: str, commit: str, job_id: int | None) -> int:
        with self.engine.begin() as c:
            key = c.execute(insert(t.releases).values(app=app, environment=environment, commit=commit,
                                                      status=ReleaseStatus.PENDING, services="[]",
                                                      job_id=job_id, created_at=now())).inserted_primary_key
        assert key is not None
        return int(key[0])

    def set_release(self, release_id: int, status: ReleaseStatus, services: tuple[ServiceSpec, ...] | None = None,
                    error: str | None = None) -> None:
        values: dict[str, Any] = {"status": status, "error": error}
        if services is not None:
            values["services"] = json.dumps([asdict(s) for s in services])
        if status != ReleaseStatus.PENDING:
            values["finished_at"] = now()
        with self.engine.begin() as c:
            c.execute(update(t.releases).where(t.releases.c.id == release_id).values(**values))

    def supersede(self, app: str, environment: str, live_id: int) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.releases).where(
                t.releases.c.app == app, t.releases.c.environment == environment,
                t.releases.c.status == ReleaseStatus.LIVE, t.releases.c.id != live_id,
            ).values(status=ReleaseStatus.SUPERSEDED))

    def list_releases(self, app: str, limit: int = 20, environment: str | None = None) -> list[ReleaseRecord]:
        q = select(t.releases).where(t.releases.c.app == app).order_by(t.releases.c.id.desc()).limit(limit)
        if environment is not None:
            q = q.where(t.releases.c.environment == environment)
        with self.engine.connect() as c:
            rows = c.execute(q)
            return [self._release(r) for r in rows]

    def set_release_artifact(self, release_id: int, services: tuple[ServiceSpec, ...]) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.releases).where(t.releases.c.id == release_id)
                      .values(artifact=json.dumps([asdict(s) for s in services])))

    def set_release_timeline(self, release_id: int, timeline: Mapping[str, object]) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.releases).where(t.releases.c.id == release_id).values(timeline=json.dumps(timeline)))

    def set_release_config(self, release_id: int, config: Mapping[str, object]) -> None:
        with self.engine.begin() as c:
            c.execute(update(t.releases).where(t.releases.c.id == release_id).values(config=json.dumps(config)))

    @staticmethod
    def _release(row: Any) -> ReleaseRecord:
        d = dict(row._mapping)
        d["created_at"], d["finished_at"] = _utc(d["created_at"]), _utc(d["finished_at"])
        return release_from_row(d, json.loads(d["services"]), json.loads(d.get("artifact") or "[]"),
                                json.loads(d.get("config") or "{}"))

    def get_release(self, release_id: int) -> ReleaseRecord:
        with self.engine.connect() as c:
            row = c.execute(select(t.releases).where(t.releases.c.id == release_id)).first()
        if row is None:
            raise NotFound(f"no release {release_id}")
        return self._release(row)

    def live_release(self, app: str, environment: str) -> ReleaseRecord | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.releases).where(
                t.releases.c.app == app, t.releases.c.environment == environment,
                t.releases.c.status == ReleaseStatus.LIVE,
            ).order_by(t.releases.c.id.desc()).limit(1)).first()
        return self._release(row) if row is not None else None

    # -- variables and secrets ------------------------------------------------------------
    def variables(self, app: str, environment: str) -> dict[str, str]:
        v = t.variables.c
        with self.engine.connect() as c:
            rows = c.execute(select(v.key, v.value).where(v.app == app, v.environment == environment)
                             .order_by(v.key))
            return {r.key: r.value for r in rows}

    def set_variables(self, app: str, environment: str, changes: Mapping[str, str | None]) -> dict[str, str]:
        v = t.variables.c
        with self.engine.begin() as c:
            for key, value in changes.items():
                where = (v.app == app, v.environment == environment, v.key == key)
                if value is None:
                    c.execute(delete(t.variables).where(*where))
                elif c.execute(update(t.variables).where(*where).values(value=value, updated_at=now())).rowcount == 0:
                    c.execute(insert(t.variables).values(app=app, environment=environment, key=key, value=value,
                                                         updated_at=now()))
        return self.variables(app, environment)

    def secrets(self, app: str, environment: str) -> list[SecretVersion]:
        s = t.secrets.c
        q = (select(s.name, func.max(s.version).label("version"), func.count().label("versions"),
                    func.min(s.created_at).label("created_at"), func.max(s.created_at).label("updated_at"))
             .where(s.app == app, s.environment == environment, s.removed_at.is_(None))
             .group_by(s.name).order_by(s.name))
        with self.engine.connect() as c:
            rows = list(c.execute(q))
            keys = {(r.name, r.version): r.key_id for r in c.execute(
                select(s.name, s.version, s.key_id).where(s.app == app, s.environment == environment,
                                                          s.removed_at.is_(None)))}
        return [SecretVersion(app=app, environment=environment, name=r.name, version=int(r.version),
                              key_id=keys[(r.name, r.version)], versions=int(r.versions),
                              created_at=_utc(r.created_at), updated_at=_utc(r.updated_at)) for r in rows]

    def add_secret(self, app: str, environment: str, name: str,
                   seal: Callable[[int], tuple[str, bytes]]) -> SecretVersion:
        s = t.secrets.c
        where = (s.app == app, s.environment == environment, s.name == name)
        with self._secrets_lock, self.engine.begin() as c:
            last = c.execute(select(func.max(s.version)).where(*where)).scalar()
            version = int(last or 0) + 1
            key_id, ciphertext = seal(version)
            c.execute(delete(t.secrets).where(*where, s.removed_at.is_not(None)))  # a removal's marker
            c.execute(insert(t.secrets).values(app=app, environment=environment, name=name, version=version,
                                               key_id=key_id, ciphertext=ciphertext, created_at=now()))
        return next(v for v in self.secrets(app, environment) if v.name == name)

    @staticmethod
    def _sealed(row: Any) -> SealedSecret:
        return SealedSecret(app=row.app, environment=row.environment, name=row.name, version=row.version,
                            key_id=row.key_id, ciphertext=bytes(row.ciphertext))

    def sealed_secret(self, app: str, environment: str, name: str, version: int) -> SealedSecret:
        s = t.secrets.c
        with self.engine.connect() as c:
            row = c.execute(select(t.secrets).where(s.app == app, s.environment == environment, s.name == name,
                                                    s.version == version, s.removed_at.is_(None))).first()
        if row is None:
            raise NotFound(f"no version {version} of secret {name!r} in {app} ({environment})",
                           f"list them with: dockyard secrets list {app} --env {environment}")
        return self._sealed(row)

    def sealed_secrets(self, app: str | None = None) -> list[SealedSecret]:
        s = t.secrets.c
        q = select(t.secrets).where(s.removed_at.is_(None)).order_by(s.id)
        if app is not None:
            q = q.where(s.app == app)
        with self.engine.connect() as c:
            return [self._sealed(r) for r in c.execute(q)]

    def remove_secret(self, app: str, environment: str, name: str) -> None:
        s = t.secrets.c
        where = (s.app == app, s.environment == environment, s.name == name)
        with self._secrets_lock, self.engine.begin() as c:
            last = c.execute(select(func.max(s.version)).where(*where, s.removed_at.is_(None))).scalar()
            if last is None:
                raise NotFound(f"no secret named {name!r} in {app} ({environment})",
                               f"list them with: dockyard secrets list {app} --env {environment}")
            c.execute(delete(t.secrets).where(*where))
            c.execute(insert(t.secrets).values(app=app, environment=environment, name=name, version=int(last),
                                               key_id="", ciphertext=b"", created_at=now(), removed_at=now()))

    def reseal_secrets(self, reseal: Callable[[SealedSecret], tuple[str, bytes]]) -> int:
        s = t.secrets.c
        count = 0
        with self._secrets_lock, self.engine.begin() as c:
            for row in list(c.execute(select(t.secrets).where(s.removed_at.is_(None)))):
                key_id, ciphertext = reseal(self._sealed(row))
                c.execute(update(t.secrets).where(s.id == row.id).values(key_id=key_id, ciphertext=ciphertext))
                count += 1
        return count


MIGRATIONS = Path(__file__).parent / "migrations"


def _newest_migration() -> str:
    """The revision no migration goes down to, read from the files (without importing alembic)."""
    revisions, downs = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith("revision ="):
                revisions.add(line.partition("=")[2].strip().strip("\"'"))
            elif line.startswith("down_revision =") and "None" not in line:
                downs.add(line.partition("=")[2].strip().strip("\"'"))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else ""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; no fsync per log line
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


if __name__ == "__main__":  # the migration child of SqlStore.migrate(in_child=True)
    SqlStore(sys.argv[1]).migrate()
