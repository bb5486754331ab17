"""Volume backups: a named volume's files as a compressed archive with its checksum, listed,
restored, and copied from one environment to another.

An archive is ``DOCKYARD_HOME/backups/APP/ENV/VOLUME/ID.tar.gz`` (the volume's files, as tar,
gzip-compressed) beside ``ID.json``: app, environment, volume, when, its size, its SHA-256, who took
it, and the services that were running on the volume then (a backup taken while they run says so:
a database may be mid-write). Only a compose file's named volumes are archived: dockyard's own
secret files live in volumes of their own, never in an archive.

A restore checks the archive's SHA-256 first, then takes the stop-first path: the running
containers of the services that mount the volume stop (halted, kept), the volume's files are
replaced by the archive's, and they start again, whatever happened. It is refused while a release
runs in the environment. A copy backs the volume up in one environment (an archive of its own,
kept), then restores that into another environment of the same app. Each is recorded as a job
(``backup``, ``restore``, ``copy``) and published (audit log).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from dockyard.domain import names
from dockyard.domain.dockyard_file import VOLUME, BackupDecl, DockyardFile
from dockyard.domain.errors import Conflict, DockyardError, NotFound
from dockyard.domain.model import Job, JobStatus, RunningService
from dockyard.domain.records import ReleaseRecord
from dockyard.ports import Orchestrator, Store
from dockyard.services.configuration import Configuration
from dockyard.services.events import Event, Events
from dockyard.services.release_commands import run_command

log = logging.getLogger(__name__)
Say = Callable[[str], None]
SCHEDULE = "schedule"  # who takes a scheduled backup
_ID = "%Y%m%dT%H%M%SZ"


class VolumeArchiver(Protocol):
    """A named volume's files as a tar stream (adapters/docker_volume_archives.py)."""

    def export(self, app: str, environment: str, volume: str, write: Callable[[bytes], object]) -> None:
        """The volume's files as a tar stream, handed to ``write`` as it comes."""
    def import_(self, app: str, environment: str, volume: str, read: Callable[[int], bytes]) -> None:
        """Replace the volume's files with those of the tar stream ``read`` gives (b"" at its end)."""


@dataclass(frozen=True)
class Archive:
    id: str
    app: str
    environment: str
    volume: str
    created_at: str
    bytes: int
    sha256: str
    by: str
    running: tuple[str, ...] = ()  # services running on the volume while it was taken
    path: str = ""
    scheduled: bool = False  # taken by the schedule (dockyard.yml), whose retention may delete it


@dataclass
class Backups:
    store: Store
    orchestrator: Orchestrator
    archives: VolumeArchiver
    root: Path  # DOCKYARD_HOME/backups
    lock: Callable[[str, str], threading.Lock]  # an environment's release lock (services/route_upkeep.py)
    events: Events | None = None
    declared: Callable[[str, str], DockyardFile | None] = lambda app, commit: None  # a commit's dockyard.yml
    configuration: Configuration | None = None  # secrets for the schedule's hooks
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # one backup or restore of a volume at a time; when the schedule last tried each
    _busy: set[tuple[str, str, str]] = field(default_factory=set, repr=False)
    _busy_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _tried: dict[tuple[str, str, str], datetime] = field(default_factory=dict, repr=False)

    # -- backup ---------------------------------------------------------------------------
    def backup(self, app: str, env: str, volume: str, who: str, source: str = "api") -> Archive:
        """Archive the volume's files now (its services keep running: the archive says so)."""
        environment = self.store.get_environment(names.app_name(app), names.environment_name(env))
        self._volume(environment.app, environment.name, volume)
        with self._one_at_a_time(environment.app, environment.name, volume):
            job = self.store.start_job("backup", environment.app, {"volume": volume, "actor": who}, environment.name)
            return self._recorded(job, source,
                                  lambda say: self._take(environment.app, environment.name, volume, who, say))

    @contextlib.contextmanager
    def _one_at_a_time(self, app: str, env: str, volume: str) -> Iterator[None]:
        key = (app, env, volume)
        with self._busy_guard:
            if key in self._busy:
                raise Conflict(f"a backup or restore of volume {volume!r} of {app} ({env}) is under way",
                               "wait for it to end (dockyard jobs), then try again")
            self._busy.add(key)
        try:
            yield
        finally:
            with self._busy_guard:
                self._busy.discard(key)

    # -- the schedule ---------------------------------------------------------------------
    def tick(self) -> list[Archive]:
        """Take the scheduled backups that are due (``backups:`` of each environment in the
        dockyard.yml of its live release), then apply each one's retention. Returns those taken."""
        taken = []
        for app in self.store.list_apps():
            for environment in self.store.environments(app.name):
                live = self.store.live_release(app.name, environment.name)
                found = self.declared(app.name, live.commit) if live is not None else None
                decl = found.environment(environment.name) if found is not None else None
                for plan in decl.backups if decl is not None else ():
                    try:
                        done = self._when_due(app.name, environment.name, plan, live)
                    except Exception as exc:  # this one failed (its job says why): the others go on
                        log.warning("scheduled backup of %s/%s/%s: %s", app.name, environment.name, plan.volume,
                                    exc.message if isinstance(exc, DockyardError) else repr(exc))
                        continue
                    if done is not None:
                        taken.append(done)
        return taken

    def _when_due(self, app: str, env: str, plan: BackupDecl, live: ReleaseRecord | None) -> Archive | None:
        scheduled = [a for a in self.archived(app, env, plan.volume) if a.scheduled]
        key = (app, env, plan.volume)
        times = [datetime.fromisoformat(a.created_at) for a in scheduled[:1]]
        if key in self._tried:
            times.append(self._tried[key])
        last = max(times, default=None)
        if last is not None and self.clock() - last < plan.every:
            return None
        self._tried[key] = self.clock()  # a failed one is tried again a period later
        self._volume(app, env, plan.volume)
        services = {s.name: s for s in (live.services if live is not None else ())}
        job = self.store.start_job("backup", app, {"volume": plan.volume, "actor": SCHEDULE}, env)

        def hooked(say: Say) -> Archive:
            try:
                if plan.before is not None:
                    say(f"-----> Before the backup, in {plan.before.service}: {' '.join(plan.before.command)}")
                    failed = run_command(self.orchestrator, self.configuration, app, env, services, plan.before,
                                         job.id, say)
                    if failed:
                        raise DockyardError(f"the command before the backup failed ({failed}): no backup was taken")
                return self._take(app, env, plan.volume, SCHEDULE, say, scheduled=True)
            finally:
                if plan.after is not None:
                    say(f"-----> After the backup, in {plan.after.service}: {' '.join(plan.after.command)}")
                    try:
                        failed = run_command(self.orchestrator, self.configuration, app, env, services, plan.after,
                                             job.id, say)
                    except DockyardError as exc:
                        failed = exc.message
                    if failed:
                        say(f" !     the command after the backup failed ({failed})")

        with self._one_at_a_time(app, env, plan.volume):
            archive = self._recorded(job, "schedule", hooked)
        for old in [a for a in self.archived(app, env, plan.volume) if a.scheduled][plan.keep:]:
            self._delete(old)
        return archive

    def _delete(self, archive: Archive) -> None:
        """An archive and its metadata go (the schedule's retention)."""
        path = Path(archive.path)
        for gone in (path, path.with_name(f"{archive.id}.json")):
            with contextlib.suppress(FileNotFoundError):
                gone.unlink()
        log.info("backup %s of %s/%s/%s deleted (retention)", archive.id, archive.app, archive.environment,
                 archive.volume)

    def _take(self, app: str, env: str, volume: str, who: str, say: Say, scheduled: bool = False) -> Archive:
        running = tuple(sorted({t.service for t in self._tasks(app, env, volume)}))
        folder = self.root / app / env / volume
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        archive_id = f"{datetime.now(UTC).strftime(_ID)}-{secrets.token_hex(2)}"
        final, partial = folder / f"{archive_id}.tar.gz", folder / f".{archive_id}.tar.gz.partial"
        say(f"-----> Backing up volume {volume} of {app} ({env})"
            + (f" while {', '.join(running)} run: stop them, or quiesce the data first, for a consistent copy"
               if running else ""))
        try:
            with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
                self.archives.export(app, env, volume, packed.write)
            digest = _sha256(partial)
            os.replace(partial, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
        archive = Archive(archive_id, app, env, volume, datetime.now(UTC).isoformat(timespec="seconds"),
                          final.stat().st_size, digest, who, running, str(final), scheduled)
        (folder / f"{archive_id}.json").write_text(json.dumps(asdict(archive), indent=2))
        say(f"       {final} ({archive.bytes / 1e6:.2f} MB, sha256 {digest[:16]}...)")
        return archive

    # -- listing --------------------------------------------------------------------------
    def archived(self, app: str, env: str | None = None, volume: str | None = None) -> list[Archive]:
        """The app's archives, newest first."""
        owner = self.store.get_app(names.app_name(app))
        base = self.root / owner.name
        if volume is not None and not VOLUME.fullmatch(volume):
            raise DockyardError(f"{volume[:80]!r} is not a volume name", f"list them: dockyard volumes list {owner.name}")
        pattern = f"{names.environment_name(env) if env else '*'}/{volume or '*'}/*.json"
        found = []
        for path in base.glob(pattern):
            with contextlib.suppress(OSError, ValueError, TypeError):
                data = json.loads(path.read_text())
                found.append(Archive(**{**data, "running": tuple(data.get("running") or ())}))
        return sorted(found, key=lambda a: a.id, reverse=True)

    def find(self, app: str, archive_id: str) -> Archive:
        found = next((a for a in self.archived(app) if a.id == archive_id), None)
        if found is None:
            raise NotFound(f"{app} has no backup {archive_id!r}", f"list them: dockyard volumes backups {app}")
        return found

    # -- restore and copy ---------------------------------------------------------------------
    def restore(self, app: str, env: str, volume: str, archive_id: str, who: str, source: str = "api") -> Archive:
        """Replace the volume's files with the archive's (its checksum checked first), its
        services stopped meanwhile."""
        environment = self.store.get_environment(names.app_name(app), names.environment_name(env))
        archive = self.find(environment.app, archive_id)
        if archive.volume != volume:
            raise DockyardError(f"backup {archive_id} is of volume {archive.volume!r}, not {volume!r}",
                                f"restore it into {archive.volume}, or pick a backup of {volume}")
        self._volume(environment.app, environment.name, volume)
        self._check(archive)
        with self._one_at_a_time(environment.app, environment.name, volume):
            job = self.store.start_job("restore", environment.app, {"volume": volume, "archive": archive_id,
                                                                     "from": archive.environment, "actor": who},
                                       environment.name)
            return self._recorded(job, source,
                                  lambda say: self._put(environment.app, environment.name, volume, archive, say))

    def copy(self, app: str, source_env: str, target_env: str, volume: str, who: str, source: str = "api") -> Archive:
        """Back the volume up in ``source_env`` and restore that archive into ``target_env``."""
        owner = self.store.get_app(names.app_name(app))
        target = self.store.get_environment(owner.name, names.environment_name(target_env))
        origin = self.store.get_environment(owner.name, names.environment_name(source_env))
        if origin.name == target.name:
            raise DockyardError("a copy needs two environments", "dockyard volumes copy APP VOLUME --from A --to B")
        self._volume(owner.name, origin.name, volume)
        self._volume(owner.name, target.name, volume)
        taken = self.backup(owner.name, origin.name, volume, who, source)
        with self._one_at_a_time(owner.name, target.name, volume):
            job = self.store.start_job("copy", owner.name, {"volume": volume, "archive": taken.id,
                                                             "from": origin.name, "actor": who}, target.name)
            return self._recorded(job, source, lambda say: self._put(owner.name, target.name, volume, taken, say))

    def _put(self, app: str, env: str, volume: str, archive: Archive, say: Say) -> Archive:
        lock = self.lock(app, env)
        busy = [j for j in self.store.list_jobs(app, limit=20, environment=env)
                if j.status == JobStatus.RUNNING and j.kind not in ("backup", "restore", "copy", "run", "exec")]
        if busy or not lock.acquire(blocking=False):
            what = f"a {busy[0].kind} job (job {busy[0].id})" if busy else "a release"
            raise Conflict(f"{what} is running in {app}'s {env}: the volume is not restored meanwhile",
                           "wait for it to end (dockyard status), then restore")
        try:
            tasks = self._tasks(app, env, volume)
            if tasks:
                say(f"-----> Stopping {', '.join(sorted({t.service for t in tasks}))} (it uses volume {volume})")
                self.orchestrator.halt(tasks)
            try:
                say(f"-----> Restoring volume {volume} of {app} ({env}) from backup {archive.id} "
                    f"(of {archive.environment}, taken {archive.created_at})")
                with gzip.open(archive.path, "rb") as tar:
                    self.archives.import_(app, env, volume, tar.read)
            finally:
                if tasks:
                    say(f"-----> Starting {', '.join(sorted({t.service for t in tasks}))} again")
                    self.orchestrator.resume(tasks)
        finally:
            lock.release()
        return archive

    # -- helpers --------------------------------------------------------------------------
    def _volume(self, app: str, env: str, volume: str) -> None:
        known = [v.name for v in self.orchestrator.volumes(app, env)]
        if volume not in known:
            raise NotFound(f"{app}'s {env} has no volume {volume!r}",
                           f"its volumes: {', '.join(known)}" if known else f"{env} has no named volume")

    def _tasks(self, app: str, env: str, volume: str) -> list[RunningService]:
        """The running containers of the live release's services that mount the volume."""
        live = self.store.live_release(app, env)
        users = {s.name for s in (live.services if live else ()) if any(v.split(":")[0] == volume for v in s.volumes)}
        return [c for c in self.orchestrator.observe(app)
                if c.environment == env and c.service in users and c.state == "running"]

    def _check(self, archive: Archive) -> None:
        path = Path(archive.path)
        if not path.is_file() or _sha256(path) != archive.sha256:
            raise DockyardError(f"backup {archive.id}'s archive does not match its checksum: it is not restored",
                                f"restore another backup (dockyard volumes backups {archive.app})")

    def _recorded(self, job: Job, source: str, work: Callable[[Say], Archive]) -> Archive:
        def say(line: str) -> None:
            self.store.append_log(job.id, line)

        try:
            archive = work(say)
        except Exception as exc:
            reason = exc.message if isinstance(exc, DockyardError) else repr(exc)
            say(f" !     {reason}")
            self.store.finish_job(job.id, JobStatus.FAILED, reason[:2000])
            self._tell(job, source, {"error": reason})
            raise
        self.store.finish_job(job.id, JobStatus.SUCCEEDED)
        self._tell(job, source, {"archive": archive.id, "sha256": archive.sha256, "bytes": archive.bytes,
                                 "running": list(archive.running)})
        return archive

    def _tell(self, job: Job, source: str, detail: dict[str, Any]) -> None:
        if self.events is not None:
            ok = "error" not in detail
            self.events.publish(Event(f"volume.{job.kind}{'' if ok else '.failed'}", job.payload.get("actor", ""),
                                      source, job.app, job.environment,
                                      {"job": job.id, "volume": job.payload.get("volume"), **detail}))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
