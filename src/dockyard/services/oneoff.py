"""`dockyard run` and `dockyard exec`: a command in an environment, recorded as a job.

``run`` starts a one-off container from the environment's live release: one of its services (its
image, variables, secrets, networks and volumes), or an image the release built that runs as no
service (the seed's ``api-tools``), with the environment's variables and secrets. ``exec`` runs
the command in a running container of a service. Either way the output streams back to the caller
as it comes (and to the job's log, secret values redacted), the input is written to the command,
the exit code is the command's, and a deadline stops it. The job records who ran what (the
command, secret values redacted), the exit code and the output.

The job is made running (``Store.start_job``): it runs in the caller's request, attached to it,
and no worker claims it. One the server stopped in the middle of is failed at the next start
(``interrupted``), and its container removed then (``Orchestrator.clear_oneoffs``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from dockyard.domain import builds, names
from dockyard.domain.errors import DockyardError, NotFound
from dockyard.domain.model import BuiltImage, Job, JobStatus, OneOffResult, RunningService, ServiceSpec
from dockyard.domain.records import ReleaseRecord
from dockyard.ports import Input, OneOffRunner, Orchestrator, Output, Store
from dockyard.services.configuration import Configuration
from dockyard.services.events import Event, Events

RUN, EXEC = "run", "exec"
MAX_COMMAND_CHARS = 64 * 1024
MAX_TIMEOUT = 24 * 3600.0
MAX_LOGGED_BYTES = 1024 * 1024  # of output, in the job's log (all of it streams to the caller)


@dataclass(frozen=True)
class Prepared:
    """A run or exec checked and recorded as a running job, ready to start."""

    job: Job
    environment: str
    command: tuple[str, ...]
    timeout: float
    spec: ServiceSpec | None = None  # run: the one-off container's service
    task: RunningService | None = None  # exec: the container it runs in


def interrupted(job: Job, say: Callable[[str], None]) -> None:
    """A run or exec the server stopped in the middle of (a worker meets it after a restart): its
    caller is gone and its container with the server's recovery; it is not run again."""
    raise DockyardError(f"dockyard stopped while this {job.kind} ran: its container was removed, and it is not run "
                        "again", f"run it again: dockyard {job.kind} {job.app} --env {job.environment} -- ...")


def check_command(command: Sequence[str], timeout: float) -> tuple[str, ...]:
    if not command:
        raise DockyardError("no command to run", "give it after --: dockyard run APP -- CMD ARGS...")
    if sum(len(word) for word in command) > MAX_COMMAND_CHARS or any("\0" in word for word in command):
        raise DockyardError(f"the command is longer than {MAX_COMMAND_CHARS // 1024} KiB, or holds a NUL character",
                            "put a long script in a file of the image, and run that")
    if not 0 < timeout <= MAX_TIMEOUT:
        raise DockyardError(f"a timeout of {timeout:g} s is out of range", f"give 1 to {MAX_TIMEOUT:g} seconds")
    return tuple(command)


@dataclass
class OneOffs:
    store: Store
    runner: OneOffRunner
    orchestrator: Orchestrator
    registry: str
    configuration: Configuration | None = None
    events: Events | None = None

    # -- checked and recorded ---------------------------------------------------------------
    def prepare_run(self, app: str, env: str, actor: str, command: Sequence[str], service: str = "",
                    image: str = "", timeout: float = 3600.0, source: str = "api") -> Prepared:
        """A one-off container of the live release's ``service`` (default: its first), or of the
        ``image`` it built (with ``service`` too: that image, with that service's configuration,
        networks and volumes); refused with nothing recorded when there is no such thing."""
        words = check_command(command, timeout)
        live = self._live(app, env)
        named = None
        if service or not image:
            named = next((s for s in live.services if s.name == service or not service), None)
            if named is None:
                raise NotFound(f"the live release of {live.environment} (release {live.id}) has no service {service!r}",
                               f"its services: {', '.join(s.name for s in live.services)}; or run an image it built: "
                               f"--image NAME")
        if image:
            spec = self._image_spec(live, image, named)
        else:
            assert named is not None
            spec = named
        spec = replace(spec, replicas=1, command=words)
        job = self._record(RUN, live.app, live.environment, actor, words, {
            "service": spec.name, "image": spec.image if image else "", "release": str(live.id), "source": source})
        return Prepared(job, live.environment, words, timeout, spec=spec)

    def prepare_exec(self, app: str, env: str, actor: str, service: str, command: Sequence[str], replica: int = 0,
                     timeout: float = 3600.0, source: str = "api") -> Prepared:
        """A command in the running container of ``service``'s ``replica``."""
        words = check_command(command, timeout)
        environment = self.store.get_environment(names.app_name(app), names.environment_name(env))
        running = [c for c in self.orchestrator.observe(environment.app)
                   if c.environment == environment.name and c.service == service and c.state == "running"]
        task = next((c for c in running if c.replica == replica), None)
        if task is None:
            where = (f"its running replicas: {', '.join(str(c.replica) for c in sorted(running, key=lambda c: c.replica))}"
                     if running else f"{environment.name} runs no container of {service!r}")
            raise NotFound(f"no running container of {service!r} replica {replica} in {environment.name}",
                           f"{where}; see them: dockyard status {environment.app} --env {environment.name}")
        job = self._record(EXEC, environment.app, environment.name, actor, words,
                           {"service": service, "replica": str(replica), "release": str(task.release),
                            "source": source})
        return Prepared(job, environment.name, words, timeout, task=task)

    def _live(self, app: str, env: str) -> ReleaseRecord:
        environment = self.store.get_environment(names.app_name(app), names.environment_name(env))
        live = self.store.live_release(environment.app, environment.name)
        if live is None:
            raise DockyardError(f"no release is live in {environment.app}'s {environment.name}: there is nothing to "
                                "run a command from", f"deploy first: dockyard deploy {environment.app} --env "
                                f"{environment.name}")
        return live

    def _image_spec(self, live: ReleaseRecord, image: str, service: ServiceSpec | None = None) -> ServiceSpec:
        """An image the release built (by its Dockerfile header's name, the name's last part, or
        its repository), as a service with the environment's variables and secrets, or with
        ``service``'s configuration (its image's own entrypoint, though)."""
        environment = self.store.get_environment(live.app, live.environment)
        branch = self.store.get_app(live.app).deploy_branch if environment.is_production else environment.branch
        found = _built_image(self.store.list_images(live.app), live, image, branch or "")
        if found is None:
            built = sorted({i.name or i.repository for i in self.store.list_images(live.app) if i.commit == live.commit})
            raise NotFound(f"release {live.id} of {live.environment} built no image {image!r}",
                           f"its images: {', '.join(built) or 'none'}; or run one of its services: --service NAME")
        pinned = builds.pinned(found, self.registry)
        if service is not None:
            return replace(service, image=pinned, image_id=found.image_id, entrypoint=None)
        spec = ServiceSpec(name=found.repository.rsplit("/", 1)[-1], image=pinned, image_id=found.image_id)
        if self.configuration is None:
            return spec
        declared = set(live.config.get("variables") or ())  # the environment's, as the release had them
        variables = {k: v for s in live.services[:1] for k, v in s.environment if k in declared}
        configured, _ = self.configuration.apply(live.app, live.environment, [spec], variables)
        return configured[0]

    def _record(self, kind: str, app: str, env: str, actor: str, command: tuple[str, ...],
                detail: dict[str, str]) -> Job:
        redact = self._redact(app)
        shown = json.dumps([redact(word) for word in command])
        return self.store.start_job(kind, app, {"command": shown, "actor": actor, **detail}, env)

    def _redact(self, app: str) -> Callable[[str], str]:
        return self.configuration.redactor(app) if self.configuration is not None else (lambda line: line)

    def abandon(self, prepared: Prepared) -> None:
        """A run whose caller left before it started: recorded as failed, nothing started."""
        self.store.finish_job(prepared.job.id, JobStatus.FAILED, "the caller left before it started")

    # -- run --------------------------------------------------------------------------------
    def run(self, prepared: Prepared, stdin: bytes | Input | None, output: Output, tty: bool = False,
            size: tuple[int, int] | None = None) -> OneOffResult:
        """Start it (``tty``: in a terminal of ``size``, rows and columns); ``stdin`` is its input
        (as it comes), ``output`` gets its output as it comes; the job records how it ended."""
        job, app = prepared.job, prepared.job.app
        log = _JobLog(self.store, job.id, self._redact(app))

        def both(stream: str, data: bytes) -> None:
            output(stream, data)
            log.add(data)

        what = " ".join(json.loads(job.payload["command"]))
        log.line(f"-----> {job.kind} in {prepared.environment}: {what}")
        try:
            if prepared.spec is not None:
                spec = (self.configuration.resolve(app, prepared.environment, prepared.spec)
                        if self.configuration is not None else prepared.spec)
                result = self.runner.run_once(app, prepared.environment, spec, prepared.command, job=job.id,
                                              stdin=stdin, tty=tty, output=both, timeout=prepared.timeout, size=size)
            else:
                assert prepared.task is not None
                result = self.runner.exec_in(prepared.task, prepared.command, stdin=stdin, tty=tty, output=both,
                                             timeout=prepared.timeout, size=size)
        except Exception as exc:
            reason = exc.message if isinstance(exc, DockyardError) else repr(exc)
            log.close()
            log.line(f" !     {reason}")
            self.store.finish_job(job.id, JobStatus.FAILED, reason[:2000])
            self._tell(job, prepared, None, reason)
            raise
        log.close()
        ended = (f"stopped after its deadline of {prepared.timeout:g} s" if result.timed_out
                 else f"exit code {result.exit_code}")
        log.line(f"=====> {ended}")
        ok = result.exit_code == 0 and not result.timed_out
        self.store.finish_job(job.id, JobStatus.SUCCEEDED if ok else JobStatus.FAILED, None if ok else ended)
        self._tell(job, prepared, result.exit_code, "" if ok else ended)
        return result

    def _tell(self, job: Job, prepared: Prepared, code: int | None, error: str) -> None:
        if self.events is None:
            return
        detail: dict[str, object] = {"job": job.id, "command": job.payload["command"], "exit_code": code}
        if error:
            detail["error"] = error
        detail.update({k: v for k, v in job.payload.items() if k in ("service", "image", "replica", "release") and v})
        self.events.publish(Event(f"{job.kind}.{'failed' if error else 'succeeded'}", job.payload.get("actor", ""),
                                  job.payload.get("source", "api"), job.app, prepared.environment, detail))


def _built_image(images: Sequence[BuiltImage], live: ReleaseRecord, wanted: str, branch: str) -> BuiltImage | None:
    """The build ``wanted`` names among the release's images: those built from its commit, or
    pinned in it, first; then the newest of that name built from the environment's ``branch``
    (another repo of the app built it); never one of another branch."""
    pinned = {s.image.rsplit("@", 1)[-1] for s in (*live.services, *live.artifact) if "@" in s.image}

    def named(image: BuiltImage) -> bool:
        short = image.repository.rsplit("/", 1)[-1]
        return wanted in (image.name, image.repository, short) or (bool(image.name) and image.name.endswith(f"/{wanted}"))

    found = [i for i in images if named(i)]
    return (next((i for i in found if i.commit == live.commit or i.digest in pinned), None)
            or next((i for i in found if i.repo and i.branch == branch), None))


class _JobLog:
    """The output, as lines in the job's log (secret values redacted), up to MAX_LOGGED_BYTES."""

    def __init__(self, store: Store, job: int, redact: Callable[[str], str]) -> None:
        self.store, self.job, self.redact = store, job, redact
        self.pending, self.logged, self.dropped = b"", 0, 0

    def line(self, text: str) -> None:
        self.store.append_log(self.job, self.redact(text))

    def add(self, data: bytes) -> None:
        if self.logged >= MAX_LOGGED_BYTES:
            self.dropped += len(data)
            return
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for raw in lines:
            self.logged += len(raw) + 1
            self.line(raw.decode(errors="replace").rstrip("\r"))
        if len(self.pending) > 64 * 1024:  # a line without end: logged in parts
            self.logged += len(self.pending)
            self.line(self.pending.decode(errors="replace"))
            self.pending = b""

    def close(self) -> None:
        if self.pending:
            self.line(self.pending.decode(errors="replace"))
            self.pending = b""
        if self.dropped:
            self.line(f"       ({self.dropped} more bytes of output streamed, not kept in this log)")
