"""In-memory implementations of the ports, for tests: same contracts as the real adapters
(tests/integration/test_contracts.py runs one suite against both), no engine, no processes.

Production code never imports this module; only tests wire it in place of the adapters.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import itertools
import json
import secrets
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import IO, Any

from dockyard.domain.configuration import SECRETS_DIR, versions_digest
from dockyard.domain.errors import BuildFailed, Conflict, DeployFailed, DockyardError, NotFound, Unavailable
from dockyard.domain.limits import too_large
from dockyard.domain.model import (
    DEFAULT_ENVIRONMENT,
    App,
    BuiltImage,
    Environment,
    HttpCheck,
    Job,
    JobStatus,
    OneOffResult,
    ReleaseStatus,
    ResolvedImage,
    Route,
    RunningService,
    SealedSecret,
    SecretVersion,
    ServiceSpec,
    SourceRepo,
    Token,
    User,
    Volume,
)
from dockyard.domain.published_ports import PortRoute
from dockyard.domain.records import ReleaseRecord, release_from_row
from dockyard.domain.retention import Swept
from dockyard.ports import Progress, Store


def _sha256(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


class FakeProxy:
    """Routes and published ports in dicts. ``events`` (shareable with a FakeOrchestrator) records
    every change; ``held`` are the host ports ((port, protocol)) other programs hold: the proxy
    cannot listen there, as Caddy cannot."""

    def __init__(self, events: list[str] | None = None) -> None:
        self.running = False
        self.events: list[str] = events if events is not None else []
        self._routes: dict[str, Route] = {}
        self._ports: dict[str, PortRoute] = {}
        self.held: set[tuple[int, str]] = set()

    def ensure_running(self) -> None:
        self.running = True

    def set_route(self, route: Route) -> None:
        self._routes[route.id] = route
        self.events.append(f"route {route.id} -> {','.join(route.upstreams)}")

    def remove_route(self, route_id: str) -> None:
        if self._routes.pop(route_id, None) is not None:
            self.events.append(f"unroute {route_id}")

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def set_port(self, port: PortRoute) -> None:
        other = next((p for p in self._ports.values() if p.port == port.port and p.id != port.id), None)
        if (port.port, "tcp") in self.held or other is not None:
            raise Unavailable(f"the proxy cannot listen on port {port.port}: address already in use")
        self._ports[port.id] = port
        self.events.append(f"port {port.port} -> {','.join(port.upstreams)}")

    def remove_port(self, port_id: str) -> None:
        gone = self._ports.pop(port_id, None)
        if gone is not None:
            self.events.append(f"unport {gone.port}")

    def ports(self) -> list[PortRoute]:
        return list(self._ports.values())

    def host_port_free(self, port: int, protocol: str, host_ip: str = "") -> bool:
        mine = protocol == "tcp" and any(p.port == port for p in self._ports.values())
        return (port, protocol) not in self.held and not mine


class FakeRegistry:
    """Tags bound to image ids. A FakeBuilder's push binds them, as a push to a real registry does."""

    def __init__(self, address: str = "registry.fake:5000") -> None:
        self._address = address
        self.running = False
        self.bound: dict[tuple[str, str], str] = {}  # (repository, tag) -> image id
        self.deleted: set[str] = set()  # image ids whose manifests were deleted, blobs not collected yet
        self.collections = 0  # garbage collections run

    @property
    def address(self) -> str:
        return self._address

    def ensure_running(self) -> None:
        self.running = True

    def config_digest(self, repository: str, tag: str) -> str | None:
        return self.bound.get((repository, tag))

    def bind(self, repository: str, tag: str, image_id: str) -> None:
        self.bound[(repository, tag)] = image_id

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """The tags bound to the manifest go (a FakeBuilder's manifest digest is its image id's)."""
        tags = [key for key, image_id in self.bound.items()
                if key[0] == repository and "sha256:" + _sha256("manifest", image_id) == digest]
        for key in tags:
            self.deleted.add(self.bound.pop(key))
        return bool(tags)

    def collect_garbage(self) -> Swept:
        """Blobs: one per image id; those no tag binds any more go."""
        gone = self.deleted - set(self.bound.values())
        self.deleted -= gone
        self.collections += 1
        return Swept(blobs=len(gone), bytes_freed=0)


class FakeBuilder:
    """Builds nothing: an image id is the digest of the Dockerfile's path and the whole context,
    so the same source gives the same id and any change gives another.

    ``fail_builds`` names Dockerfiles whose build fails, as a failing RUN step would. Build args
    and the target count in the id (``options`` keeps them by image id); a Dockerfile outside the
    context is built from the text given with it.
    """

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self.fail_builds: set[str] = set()
        self.sizes: dict[str, int] = {}  # image id -> size
        self.references: dict[str, str] = {}  # local reference -> image id
        self.pushed: list[str] = []
        self.dockerfiles: dict[str, str | None] = {}  # image id -> the Dockerfile text given instead
        self.options: dict[str, tuple[dict[str, str], str]] = {}  # image id -> (build args, target)
        self.in_use: set[str] = set()  # image ids a container outside dockyard's uses: never removed
        self.removed: list[str] = []  # image ids removed, in order

    def build(self, context: IO[bytes], dockerfile: str, tag: str, progress: Progress,
              dockerfile_text: str | None = None, *, buildargs: Mapping[str, str] | None = None,
              target: str = "") -> str:
        options = json.dumps([sorted((buildargs or {}).items()), target]).encode()
        data = context.read() + (dockerfile_text or "").encode()
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                names = set(tar.getnames())
        except tarfile.TarError as exc:
            raise BuildFailed(f"{dockerfile}: build failed: the context is not a tar ({exc})") from None
        if dockerfile_text is None and dockerfile not in names:
            raise BuildFailed(f"{dockerfile}: build failed: no such file in the context")
        if dockerfile in self.fail_builds:
            raise BuildFailed(f"{dockerfile}: build failed: scripted failure", "fix the Dockerfile")
        image_id = "sha256:" + _sha256("image", dockerfile, data, *([options] if buildargs or target else []))
        progress(f"Step 1/1 : fake build of {dockerfile}")
        progress(f"Successfully built {image_id[7:19]}")
        self.sizes[image_id] = len(data)
        self.dockerfiles[image_id] = dockerfile_text
        self.options[image_id] = (dict(buildargs or {}), target)
        if tag:
            self.references[tag] = image_id
        return image_id

    def tag(self, image_id: str, reference: str) -> None:
        if image_id not in self.sizes:
            raise NotFound(f"no such image: {image_id}")
        self.references[reference] = image_id

    def untag(self, reference: str) -> None:
        self.references.pop(reference, None)

    def image_id(self, reference: str) -> str | None:
        """As the engine answers: an image by tag, or by its id while it exists."""
        return self.references.get(reference) or (reference if reference in self.sizes else None)

    def push(self, reference: str, progress: Progress) -> str:
        image_id = self.references.get(reference)
        if image_id is None:
            raise DockyardError(f"push of {reference} failed: no local image has this tag")
        prefix = self.registry.address + "/"
        if not reference.startswith(prefix):
            raise DockyardError(f"push of {reference} failed: not dockyard's registry ({self.registry.address})")
        repository, _, tag = reference.removeprefix(prefix).rpartition(":")
        self.registry.bind(repository, tag, image_id)
        self.pushed.append(reference)
        progress(f"{image_id[7:19]}: Pushed")
        return "sha256:" + _sha256("manifest", image_id)

    def size(self, image_id: str) -> int:
        if image_id not in self.sizes:
            raise NotFound(f"no such image: {image_id}")
        return self.sizes[image_id]

    def remove_image(self, image_id: str, ours: str) -> str | None:
        for reference in [r for r, i in self.references.items() if i == image_id and r.startswith(ours)]:
            del self.references[reference]
        others = sorted(r for r, i in self.references.items() if i == image_id)
        if others:
            return f"also tagged {', '.join(others)}"
        if image_id in self.in_use:
            return "a container uses it"
        self.sizes.pop(image_id, None)
        self.removed.append(image_id)
        return None


class FakeOrchestrator:
    """Containers in a dict; a started container runs until stopped.

    It keeps the contract the real engine keeps (tests/integration/test_orchestrator_contract.py):
    a web service's upstream is an address on its app network and its own port; ``observe`` never
    lists containers that belong to no app (the data plane's); ``logs`` prefixes each line with
    ``service[rN] | ``, honours ``tail``, and with ``follow`` ends only when ``stop`` is set or the
    app's containers are gone.

    Scripted behaviour, by service name, in place of what a real command would do: services in
    ``fail_start`` cannot be started (``web#1``: its replica 1); those in ``fail_ready`` exit before they are ready and those
    in ``never_ready`` (web services) never answer on their port (``wait_ready`` raises
    DeployFailed either way); ``output`` holds the lines a service prints (what ``logs`` yields, and
    the last output a failure shows). ``events`` (shareable with a FakeProxy) records starts and
    stops in order.

    A one-shot service (``ServiceSpec.one_shot``) runs until ``wait_ready``, which sees it exit: with
    code 0 (``exit_code`` reported), or 1 when it is in ``fail_ready``. A service with a healthcheck
    is healthy at ``wait_ready``, unless it is in ``unhealthy``; a web service given an HTTP check
    passes it (recorded in ``events``) when the status ``check_answers`` gives (else 200) passes. ``names`` holds each network's
    names (service, hostname, container_name, aliases) and the containers they lead to; a one-shot
    service in ``lookups`` resolves those names on its network, and exits 1 if one leads nowhere.
    The host ports Docker would bind (``ServiceSpec.direct_ports``, in ``bindings``) are bound by
    one running container at a time: a start or resume on a bound one fails, as the engine's does.
    """

    NETWORK = ipaddress.IPv4Address("10.213.0.0")  # as the real one's default pool

    def __init__(self, events: list[str] | None = None) -> None:
        self.events: list[str] = events if events is not None else []
        self.containers: dict[str, RunningService] = {}
        self.networks: set[tuple[str, str]] = set()  # (app, environment)
        self.fail_start: set[str] = set()
        self.fail_ready: set[str] = set()
        self.never_ready: set[str] = set()
        self.unhealthy: set[str] = set()
        self.crash_after_switch: set[str] = set()  # services whose new container exits in the monitor window
        self.busy: dict[str, int] = {}  # service -> connections its old containers keep open when drained
        self.check_answers: dict[str, int] = {}  # service -> the status its check's path answers (else 200)
        self.lookups: dict[str, tuple[str, ...]] = {}
        self.output: dict[str, list[str]] = {}
        self.names: dict[tuple[str, str], dict[str, set[str]]] = {}  # (app, env) -> name -> container ids
        self._kinds: dict[str, str] = {}  # container id -> "once" | "health"
        self.volume_store: dict[tuple[str, str, str], set[str]] = {}
        self.oneoffs: list[tuple[str, ServiceSpec | RunningService, tuple[str, ...]]] = []  # (kind, where, command)
        self.exit_codes: dict[str, int] = {}  # a command's first word -> the exit code a run or exec gives
        self.image_volumes: dict[str, tuple[str, ...]] = {}  # image (reference or id) -> its VOLUMEs
        self.registry_digests: dict[str, str] = {}  # reference -> the registry digest it came with
        self.missing: set[str] = set()  # references not on the host  # (app, env, name) -> containers mounting it
        self.bindings: dict[str, tuple[tuple[int, int, str, str], ...]] = {}  # container id -> host ports Docker binds
        self._serial = itertools.count(1)
        self._addresses = itertools.count(2)

    def ensure_network(self, app: str, environment: str) -> None:
        self.networks.add((app, environment))

    def start(self, app: str, release: int, environment: str, service: ServiceSpec,
              replicas: Sequence[int] = (0,)) -> list[RunningService]:
        started: list[RunningService] = []
        try:
            for replica in replicas:
                started.append(self._start_one(app, release, environment, service, replica))
        except DeployFailed:
            if started:
                self.stop(started)  # all or none, as the engine's
            raise
        return started

    def _start_one(self, app: str, release: int, environment: str, service: ServiceSpec,
                   replica: int) -> RunningService:
        if (app, environment) not in self.networks:
            raise DeployFailed(f"cannot create {service.name}: network of {app} ({environment}) not found")
        if service.name in self.fail_start or f"{service.name}#{replica}" in self.fail_start:
            raise DeployFailed(f"cannot start {service.name}: scripted failure")
        self._check_bindings(service.name, service.direct_ports)
        address = self.NETWORK + next(self._addresses)
        container = RunningService(
            id=_sha256("container", str(next(self._serial))),
            app=app,
            service=service.name,
            release=release,
            image=service.image_id or service.image,  # as DockerEngine: a built image runs by its id
            state="running",
            upstream=f"{address}:{service.port}" if service.port else None,
            environment=environment,
            spec_hash=service.spec_hash,
            stop_timeout=service.stop_grace_period,
            replica=replica,
        )
        if service.one_shot:
            self._kinds[container.id] = "once"
        elif service.healthcheck[:1] not in ((), ("NONE",)):
            self._kinds[container.id] = "health"
        if not service.network_mode:
            for name in (service.name, *service.aliases):
                self.names.setdefault((app, environment), {}).setdefault(name.lower(), set()).add(container.id)
        for entry in service.volumes:
            users = self.volume_store.setdefault((app, environment, entry.split(":")[0]), set())
            if any(self.containers[u].state == "running" for u in users if u in self.containers):
                self.events.append(f"SHARED VOLUME {entry.split(':')[0]} {service.name} r{release}")
            users.add(container.id)
        self.containers[container.id] = container
        if service.direct_ports:
            self.bindings[container.id] = service.direct_ports
        self.events.append(f"start {service.name} r{release} {container.id[:12]}")
        return container

    def _check_bindings(self, service: str, ports: tuple[tuple[int, int, str, str], ...], own: str = "") -> None:
        """As the engine: a host port is bound by one running container at a time."""
        wanted = {(host, protocol) for host, _, protocol, _ in ports}
        for cid, bound in self.bindings.items():
            held = {(host, protocol) for host, _, protocol, _ in bound} & wanted
            if cid != own and held and self.containers[cid].state == "running":
                host, protocol = sorted(held)[0]
                raise DeployFailed(f"cannot start {service}: Bind for 0.0.0.0:{host}/{protocol} failed: port is "
                                   "already allocated")

    def resolve_image(self, image: str, pull: bool = True) -> ResolvedImage | None:
        """Every image is there (or pulled): its id a hash of its reference and digest; ``image_volumes``
        scripts VOLUMEs, ``registry_digests`` a digest it came with, ``missing`` one not pulled."""
        if image in self.missing and not pull:
            return None
        if image.startswith("sha256:"):
            return ResolvedImage(image, "", tuple(self.image_volumes.get(image, ())))
        digest = self.registry_digests.get(image)
        name = image.split("@")[0].rsplit(":", 1)[0] if "/" not in image.split("@")[0].rsplit(":", 1)[-1] else image
        return ResolvedImage("sha256:" + _sha256("image", image, digest or ""), f"{name}@{digest}" if digest else "",
                             tuple(self.image_volumes.get(image, ())))

    def _last_output(self, service: str) -> str:
        return "\n".join(self.output.get(service, [])[-15:])

    def wait_ready(self, tasks: Sequence[RunningService], timeout: float, check: HttpCheck | None = None) -> None:
        for container in tasks:
            self._wait_one(container, timeout, check)

    def _wait_one(self, container: RunningService, timeout: float, check: HttpCheck | None) -> None:
        current = self.containers.get(container.id)
        if current is None:
            raise DeployFailed(f"service {container.service} is gone")
        kind = self._kinds.get(container.id)
        if kind == "once":
            names = self.names.get((container.app, container.environment), {})
            unknown = [n for n in self.lookups.get(container.service, ())
                       if not any(self.containers[i].state == "running" for i in names.get(n.lower(), ()))]
            failed = container.service in self.fail_ready or bool(unknown)
            self.containers[container.id] = replace(current, state="exited", exit_code=1 if failed else 0)
            if failed:
                raise DeployFailed(
                    f"service {container.service} runs once and must exit with code 0: it exited with code 1. "
                    f"Its last output:\n{self._last_output(container.service)}",
                    "run it locally with docker run to see why it fails",
                )
            self.events.append(f"completed {container.service} r{container.release} {container.id[:12]}")
            return
        if container.service in self.fail_ready:
            self.containers[container.id] = replace(current, state="exited")
            raise DeployFailed(
                f"service {container.service} exited (code 1) before it was ready. "
                f"Its last output:\n{self._last_output(container.service)}",
                "run it locally with docker run to see why it stops",
            )
        if kind == "health" and container.service in self.unhealthy:
            raise DeployFailed(
                f"service {container.service} is unhealthy. Its healthcheck's last results:\nexit 1: \n"
                f"Its last output:\n{self._last_output(container.service)}",
                "run its healthcheck's test in the container (docker exec) to see why it fails",
            )
        if kind is None and container.upstream is not None and check is not None:
            self.events.append(f"check {container.service} GET {check.path}")
            answered = self.check_answers.get(container.service, 200)
            if not check.passes(answered):
                raise DeployFailed(
                    f"service {container.service} did not pass its health check (GET {check.path}, expecting "
                    f"{check.status or '2xx or 3xx'}) within {timeout:.0f}s: it answered "
                    f"{answered}. "
                    f"Its last output:\n{self._last_output(container.service)}",
                    "make the path answer once the service can serve, or fix dockyard.yml's services/NAME/health",
                )
        elif kind is None and container.upstream is not None and container.service in self.never_ready:
            raise DeployFailed(
                f"service {container.service} did not answer HTTP on its port within {timeout:.0f}s. "
                f"Its last output:\n{self._last_output(container.service)}",
                "check that it listens on 0.0.0.0 and on the EXPOSEd port",
            )
        self.events.append(f"ready {container.service} r{container.release} {container.id[:12]}")

    def run_once(self, app: str, environment: str, service: ServiceSpec, command: Sequence[str], *, job: int,
                 stdin: bytes | Callable[[], bytes] | None, tty: bool, output: Callable[[str, bytes], None],
                 timeout: float, size: tuple[int, int] | None = None) -> OneOffResult:
        """Says its command, then its input back; exits as ``exit_codes`` says (else 0)."""
        return self._oneoff("run", service, command, stdin, output)

    def exec_in(self, task: RunningService, command: Sequence[str], *, stdin: bytes | Callable[[], bytes] | None,
                tty: bool, output: Callable[[str, bytes], None], timeout: float,
                size: tuple[int, int] | None = None) -> OneOffResult:
        if task.id not in self.containers:
            raise DeployFailed(f"cannot run a command in {task.service}: no such container")
        return self._oneoff("exec", task, command, stdin, output)

    def clear_oneoffs(self) -> int:
        return 0  # a fake one-off never outlives its call

    def _oneoff(self, kind: str, where: ServiceSpec | RunningService, command: Sequence[str],
                stdin: bytes | Callable[[], bytes] | None, output: Callable[[str, bytes], None]) -> OneOffResult:
        self.oneoffs.append((kind, where, tuple(command)))
        output("stdout", (" ".join(command) + "\n").encode())
        data = stdin if isinstance(stdin, bytes) or stdin is None else b"".join(iter(stdin, b""))
        if data:
            output("stderr", data)
        return OneOffResult(self.exit_codes.get(command[0], 0))

    def observe(self, app: str | None = None) -> list[RunningService]:
        found = [c for c in self.containers.values() if c.app and (app is None or c.app == app)]
        return sorted(found, key=lambda c: (c.app, c.service, c.release, c.replica))

    def monitor(self, containers: Sequence[RunningService], seconds: float,
                checks: Mapping[str, HttpCheck]) -> None:
        """A new container of a service in ``crash_after_switch`` exits during the window."""
        for c in containers:
            self.events.append(f"monitor {c.service} r{c.release} {c.id[:12]}")
            if c.service in self.crash_after_switch and c.id in self.containers:
                self.containers[c.id] = replace(self.containers[c.id], state="exited")
                raise DeployFailed(f"service {c.service} exited (code 1) 0.5s after the switch. "
                                   f"Its last output:\n{self._last_output(c.service)}",
                                   "run it locally with docker run to see why it stops; the previous release "
                                   "serves again")

    def drain(self, containers: Sequence[RunningService], timeout: float) -> int:
        """Nothing answers requests here: drained at once (recorded in ``events``), unless
        ``busy`` holds connections left open at the timeout."""
        for c in containers:
            self.events.append(f"drain {c.service} r{c.release} {c.id[:12]}")
        return sum(self.busy.get(c.service, 0) for c in containers)

    def stop(self, tasks: Sequence[RunningService]) -> None:
        for container in tasks:
            self._stop_one(container)

    def halt(self, tasks: Sequence[RunningService]) -> None:
        for container in tasks:
            self._halt_one(container)

    def resume(self, tasks: Sequence[RunningService]) -> None:
        failure: DeployFailed | None = None
        for container in tasks:
            try:
                self._resume_one(container)
            except DeployFailed as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    def _stop_one(self, container: RunningService) -> None:
        if self.containers.pop(container.id, None) is not None:
            self.events.append(f"stop {container.service} r{container.release} {container.id[:12]}")
        self.bindings.pop(container.id, None)
        for users in self.volume_store.values():
            users.discard(container.id)
        for names in self.names.values():
            for ids in names.values():
                ids.discard(container.id)
        self._kinds.pop(container.id, None)

    def _halt_one(self, container: RunningService) -> None:
        current = self.containers.get(container.id)
        if current is not None:
            self.containers[container.id] = replace(current, state="exited")
            self.events.append(f"halt {container.service} r{container.release} {container.id[:12]}")

    def _resume_one(self, container: RunningService) -> None:
        current = self.containers.get(container.id)
        if current is None:
            raise DeployFailed(f"cannot start {container.service} of release {container.release} again: gone")
        self._check_bindings(container.service, self.bindings.get(container.id, ()), own=container.id)
        self.containers[container.id] = replace(current, state="running")
        self.events.append(f"resume {container.service} r{container.release} {container.id[:12]}")

    def volumes(self, app: str, environment: str) -> list[Volume]:
        return [Volume(name=name, app=app, environment=environment, volume=f"fake-{app}-{environment}-{name}",
                       size=0, used_by=tuple(sorted({self.containers[u].service for u in users
                                                     if u in self.containers})))
                for (a, env, name), users in sorted(self.volume_store.items()) if (a, env) == (app, environment)]

    def remove_volume(self, app: str, environment: str, name: str) -> None:
        users = self.volume_store.get((app, environment, name))
        if users is None:
            raise NotFound(f"{app} has no volume {name!r} in {environment}")
        if any(u in self.containers for u in users):
            raise Conflict(f"volume {name!r} of {app} is in use")
        del self.volume_store[(app, environment, name)]

    def remove_network(self, app: str, environment: str) -> None:
        self.networks.discard((app, environment))

    def logs(self, app: str, environment: str, follow: bool, tail: int,
             stop: threading.Event | None = None) -> Iterator[str]:
        """The scripted ``output`` of the environment's running containers, the last ``tail``
        lines of each; with ``follow``, the iterator then waits until ``stop`` is set or the
        containers are gone (nothing more is ever printed)."""
        running = [c for c in self.observe(app) if c.state == "running" and c.environment == environment]
        for c in running:
            lines = self.output.get(c.service, [])
            for line in lines[-tail:] if tail > 0 else []:
                if stop is not None and stop.is_set():
                    return
                yield f"{c.service}[r{c.release}] | {line}"
        pause = threading.Event()
        while follow and not (stop is not None and stop.is_set()):
            if not any(c.id in self.containers for c in running):
                return
            (stop or pause).wait(0.05)


class FakeRepos:
    """Source trees by app and commit (``trees[app][commit] = {path: text}``) and branch heads."""

    def __init__(self) -> None:
        self.trees: dict[str, dict[str, dict[str, str]]] = {}
        self.heads: dict[str, dict[str, str]] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.parents: dict[str, tuple[str, int]] = {}  # commit -> (its parent, its time)

    def create(self, app: str) -> None:
        self.trees.setdefault(app, {})
        self.heads.setdefault(app, {})

    def delete(self, app: str) -> None:
        """As GitRepos: the app's own repository takes its other repos (``APP/NAME``) with it."""
        for key in [k for k in (*self.trees, *self.heads, *self.tags) if k == app or
                    ("/" not in app and k.startswith(f"{app}/"))]:
            self.trees.pop(key, None)
            self.heads.pop(key, None)
            self.tags.pop(key, None)

    def exists(self, app: str) -> bool:
        return app in self.trees

    def commit(self, app: str, files: dict[str, str], branch: str = "main") -> str:
        """Record a commit of ``files`` on ``branch`` (as a push would); return its id."""
        if app not in self.trees:
            raise NotFound(f"no repository for {app!r}")
        parent = self.heads[app].get(branch, "")
        commit = _sha256(parent, *sorted(f"{p}\0{t}" for p, t in files.items()))[:40]
        self.trees[app][commit] = dict(files)
        self.heads[app][branch] = commit
        self.parents[commit] = (parent, int(time.time()))
        return commit

    def commits(self, app: str, commit: str, since: str | None = None, limit: int = 100) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        while commit and commit != since and commit in self.parents and len(out) < limit:
            parent, when = self.parents[commit]
            out.append((commit, when))
            commit = parent
        return out

    def _tree(self, app: str, commit: str) -> dict[str, str]:
        tree = self.trees.get(app, {}).get(commit)
        if tree is None:
            raise NotFound(f"no commit {commit!r} in {app!r}")
        return tree

    def files(self, app: str, commit: str, incoming: str = "") -> list[str]:
        return sorted(self._tree(app, commit))  # (a commit being pushed is among the trees already)

    def read(self, app: str, commit: str, path: str, limit: int = 1024 * 1024, incoming: str = "") -> str | None:
        text = self.trees.get(app, {}).get(commit, {}).get(path)
        if text is not None and len(text.encode()) > limit:
            raise too_large(path, len(text.encode()), limit)
        return text

    def archive(self, app: str, commit: str, out: IO[bytes], path: str = "") -> None:
        """A tar of the tree (or of its folder ``path``), byte-identical for identical trees."""
        prefix = f"{path}/" if path else ""
        tree = {p.removeprefix(prefix): t for p, t in self._tree(app, commit).items() if p.startswith(prefix)}
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(tree):
                data = tree[path].encode()
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.mtime = len(data), 0o644, 0
                tar.addfile(info, io.BytesIO(data))

    def head(self, app: str, branch: str) -> str | None:
        return self.heads.get(app, {}).get(branch)

    def tag(self, app: str, name: str, oid: str = "", incoming: str = "") -> str | None:
        """Tags as refs of their own (``tags[app][name] = commit``); an oid is its commit."""
        if oid:
            return oid if oid in self.trees.get(app, {}) else None
        return self.tags.get(app, {}).get(name)

    def accepts_branch(self, name: str) -> bool:  # a few of git's rules
        return ".." not in name and "@{" not in name and not name.endswith((".lock", "/", "."))



class FakeSecretFiles:
    """Secret files in a dict, by mount: ``files[mount] = {name: content}``. ``prune`` keeps the
    mounts ``in_use`` says a container has (none by default), as the engine refuses to remove those."""

    def __init__(self, in_use: Callable[[], set[str]] | None = None) -> None:
        self.files: dict[str, dict[str, bytes]] = {}
        self.in_use = in_use or set

    def mount(self, app: str, environment: str, secrets: Sequence[tuple[str, int]]) -> str:
        return f"fake-{app}-{environment}-secrets-{versions_digest(secrets)}:{SECRETS_DIR}:ro"

    def write(self, app: str, environment: str, secrets: Sequence[tuple[str, int]],
              files: Mapping[str, bytes]) -> None:
        self.files.setdefault(self.mount(app, environment, secrets), {}).update(files)

    def prune(self, app: str) -> None:
        used = self.in_use()
        for mount in [m for m in self.files if m.startswith(f"fake-{app}-") and m not in used]:
            del self.files[mount]


def _now() -> datetime:
    return datetime.now(UTC)


def _next_id(ids: Iterator[int]) -> int:
    """As SQLite gives a rowid (no AUTOINCREMENT): one more than the largest one left."""
    return max(ids, default=0) + 1


class FakeStore:
    """dockyard's state in dicts, under one lock: the contract of SqlStore
    (tests/integration/test_store_contract.py runs one suite against both), including its ids
    (one more than the largest left, so an id freed by ``delete_app`` is taken again), its
    orderings and its errors."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._installation: str | None = None
        self._tokens: dict[int, dict[str, Any]] = {}  # id -> name, hash, user, created_at, last_used_at
        self._users: dict[str, User] = {}
        self._apps: dict[str, App] = {}
        self._environments: dict[tuple[str, str], Environment] = {}
        self._jobs: dict[int, Job] = {}
        self._logs: dict[int, tuple[int, str]] = {}  # log id -> (job id, line)
        self._images: dict[int, BuiltImage] = {}
        self._repos: dict[tuple[str, str], SourceRepo] = {}
        self._collected: dict[tuple[str, str], str] = {}  # (repository, tag) -> image id, once collected
        self._releases: dict[int, dict[str, Any]] = {}
        self._variables: dict[tuple[str, str], dict[str, str]] = {}
        # (app, environment, name) -> {version: (key id, ciphertext, created_at)}, and the last
        # version of a removed secret (its marker), so that a secret set again goes on from it
        self._secrets: dict[tuple[str, str, str], dict[int, tuple[str, bytes, datetime]]] = {}
        self._removed: dict[tuple[str, str, str], int] = {}
        self._secret_order: dict[tuple[str, str, str, int], int] = {}  # as the rows' ids: insertion order
        self._secret_serial = itertools.count(1)

    def migrate(self, in_child: bool = False) -> None:
        """Nothing to migrate."""

    # -- installation & tokens ------------------------------------------------------------
    def installation_id(self) -> str:
        with self._lock:
            if self._installation is None:
                self._installation = secrets.token_hex(6)
            return self._installation

    def token_count(self) -> int:
        with self._lock:
            return len(self._tokens)

    def create_token(self, name: str, role: str = "admin", user: str | None = None) -> str:
        token = "dy_" + secrets.token_urlsafe(32)
        holder = user or name
        with self._lock:
            if holder not in self._users:
                if user is not None:
                    raise NotFound(f"no user named {user!r}", "list them with: dockyard users list")
                self._users[holder] = User(holder, role, _now())
            elif user is None and self._users[holder].role != role:
                raise Conflict(f"user {holder!r} exists with role {self._users[holder].role}")
            if any(t["name"] == name for t in self._tokens.values()):
                raise Conflict(f"a token named {name!r} exists", "pick another name or revoke it first")
            self._tokens[_next_id(iter(self._tokens))] = {
                "name": name, "hash": hashlib.sha256(token.encode()).hexdigest(), "user": holder,
                "created_at": _now(), "last_used_at": None}
        return token

    def verify_token(self, token: str) -> Token | None:
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            for t in self._tokens.values():
                if t["hash"] == digest:
                    used = t["last_used_at"]
                    if used is None or (_now() - used).total_seconds() > 60:
                        t["last_used_at"] = _now()
                    return Token(str(t["name"]), self._users[t["user"]].role, user=str(t["user"]))
        return None

    def list_tokens(self) -> list[Token]:
        with self._lock:
            return [Token(t["name"], self._users[t["user"]].role, t["created_at"], t["last_used_at"], t["user"])
                    for _, t in sorted(self._tokens.items())]

    def revoke_token(self, name: str) -> None:
        with self._lock:
            found = [i for i, t in self._tokens.items() if t["name"] == name]
            if not found:
                raise NotFound(f"no token named {name!r}", "list them with: dockyard tokens list")
            for i in found:
                del self._tokens[i]

    def create_user(self, name: str, role: str) -> User:
        with self._lock:
            if name in self._users:
                raise Conflict(f"a user named {name!r} exists", "pick another name")
            self._users[name] = User(name, role, _now())
        return self._users[name]

    def list_users(self) -> list[User]:
        with self._lock:
            return [replace(u, tokens=sum(t["user"] == u.name for t in self._tokens.values()))
                    for _, u in sorted(self._users.items())]

    def _last_admin(self, name: str) -> bool:
        if name not in self._users:
            raise NotFound(f"no user named {name!r}", "list them with: dockyard users list")
        admins = [u for u in self._users.values() if u.role == "admin"]
        return [u.name for u in admins] == [name]

    def set_user_role(self, name: str, role: str) -> User:
        with self._lock:
            if self._last_admin(name) and role != "admin":
                raise Conflict(f"{name} is the last admin", "make another user admin first")
            self._users[name] = replace(self._users[name], role=role)
            return self._users[name]

    def remove_user(self, name: str) -> None:
        with self._lock:
            if self._last_admin(name):
                raise Conflict(f"{name} is the last admin", "make another user admin first")
            del self._users[name]
            for i in [i for i, t in self._tokens.items() if t["user"] == name]:
                del self._tokens[i]

    # -- apps -----------------------------------------------------------------------------
    def create_app(self, app: App) -> App:
        with self._lock:
            if app.name in self._apps:
                raise Conflict(f"app {app.name!r} already exists", "pick another name, or push to its remote")
            self._apps[app.name] = App(name=app.name, deploy_branch=app.deploy_branch, domains=tuple(app.domains),
                                       created_at=_now(), host_access=tuple(app.host_access))
            self._environments[(app.name, DEFAULT_ENVIRONMENT)] = Environment(app.name, DEFAULT_ENVIRONMENT,
                                                                              created_at=_now())
            return self._apps[app.name]

    def get_app(self, name: str) -> App:
        with self._lock:
            app = self._apps.get(name)
        if app is None:
            raise NotFound(f"no app named {name!r}",
                           "list apps with: dockyard apps, or create it: dockyard apps create NAME")
        return app

    def list_apps(self) -> list[App]:
        with self._lock:
            return [self._apps[name] for name in sorted(self._apps)]

    def set_domains(self, name: str, domains: tuple[str, ...]) -> App:
        with self._lock:
            self._apps[name] = replace(self.get_app(name), domains=tuple(domains))
            return self._apps[name]

    def set_host_access(self, name: str, keys: tuple[str, ...]) -> App:
        with self._lock:
            self._apps[name] = replace(self.get_app(name), host_access=tuple(keys))
            return self._apps[name]

    def delete_app(self, name: str) -> None:
        with self._lock:
            jobs = {i for i, j in self._jobs.items() if j.app == name}
            for log_id in [i for i, (job_id, _) in self._logs.items() if job_id in jobs]:
                del self._logs[log_id]
            for job_id in jobs:
                del self._jobs[job_id]
            for release_id in [i for i, r in self._releases.items() if r["app"] == name]:
                del self._releases[release_id]
            for image_id in [i for i, im in self._images.items() if im.app == name]:
                del self._images[image_id]
            for repo in [k for k in self._repos if k[0] == name]:
                del self._repos[repo]
            for scope in [k for k in self._variables if k[0] == name]:
                del self._variables[scope]
            for key in [k for k in self._secrets if k[0] == name]:
                del self._secrets[key]
            for key in [k for k in self._removed if k[0] == name]:
                del self._removed[key]
            for order in [k for k in self._secret_order if k[0] == name]:
                del self._secret_order[order]
            for scope in [k for k in self._environments if k[0] == name]:
                del self._environments[scope]
            self._apps.pop(name, None)

    # -- environments ---------------------------------------------------------------------
    def environments(self, app: str) -> list[Environment]:
        with self._lock:
            found = [e for (a, _), e in self._environments.items() if a == app]
        return sorted(found, key=lambda e: (e.name != DEFAULT_ENVIRONMENT, e.name))

    def get_environment(self, app: str, name: str) -> Environment:
        with self._lock:
            found = self._environments.get((app, name))
        if found is None:
            self.get_app(app)
            raise NotFound(f"{app} has no environment {name!r}",
                           f"list them with: dockyard envs {app}, or add it: dockyard envs create {app} {name}")
        return found

    def add_environment(self, environment: Environment) -> Environment:
        with self._lock:
            self.get_app(environment.app)
            key = (environment.app, environment.name)
            if key in self._environments:
                raise Conflict(f"{environment.app} has an environment named {environment.name!r} already",
                               "pick another name, or remove it first")
            self._environments[key] = replace(environment, created_at=_now())
            return self._environments[key]

    def set_environment_branch(self, app: str, name: str, branch: str | None) -> Environment:
        with self._lock:
            self._environments[(app, name)] = replace(self.get_environment(app, name), branch=branch)
            return self._environments[(app, name)]

    def set_environment_protected(self, app: str, name: str, protected: bool) -> Environment:
        with self._lock:
            self._environments[(app, name)] = replace(self.get_environment(app, name), protected=protected)
            return self._environments[(app, name)]

    def set_environment_replicas(self, app: str, name: str, replicas: Mapping[str, int]) -> Environment:
        with self._lock:
            self._environments[(app, name)] = replace(self.get_environment(app, name),
                                                      replicas=tuple(sorted(replicas.items())))
            return self._environments[(app, name)]

    def remove_environment(self, app: str, name: str) -> None:
        with self._lock:
            self.get_environment(app, name)
            for release_id in [i for i, r in self._releases.items() if (r["app"], r["environment"]) == (app, name)]:
                del self._releases[release_id]
            self._variables.pop((app, name), None)
            for table in (self._secrets, self._removed):
                for key in [k for k in table if k[:2] == (app, name)]:
                    del table[key]
            for order in [k for k in self._secret_order if k[:2] == (app, name)]:
                del self._secret_order[order]
            del self._environments[(app, name)]

    # -- jobs -----------------------------------------------------------------------------
    @staticmethod
    def _copy(job: Job) -> Job:
        return replace(job, payload=dict(job.payload))

    def enqueue(self, kind: str, app: str, payload: dict[str, str], environment: str = DEFAULT_ENVIRONMENT) -> Job:
        with self._lock:
            job = Job(id=_next_id(iter(self._jobs)), kind=kind, app=app, status=JobStatus.QUEUED,
                      payload=json.loads(json.dumps(payload)), attempts=0, created_at=_now(),
                      environment=environment)
            self._jobs[job.id] = job
            return self._copy(job)

    def start_job(self, kind: str, app: str, payload: dict[str, str], environment: str = DEFAULT_ENVIRONMENT) -> Job:
        with self._lock:
            job = Job(id=_next_id(iter(self._jobs)), kind=kind, app=app, status=JobStatus.RUNNING,
                      payload=json.loads(json.dumps(payload)), attempts=1, created_at=_now(), started_at=_now(),
                      environment=environment)
            self._jobs[job.id] = job
            return self._copy(job)

    def record_failed_job(self, kind: str, app: str, payload: dict[str, str], error: str, line: str) -> Job:
        with self._lock:
            job = Job(id=_next_id(iter(self._jobs)), kind=kind, app=app, status=JobStatus.FAILED, error=error,
                      payload=json.loads(json.dumps(payload)), attempts=0, created_at=_now(), finished_at=_now())
            self._jobs[job.id] = job
            self._logs[_next_id(iter(self._logs))] = (job.id, line)
            return self._copy(job)

    def get_job(self, job_id: int) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", "list jobs with: dockyard jobs")
        return self._copy(job)

    def list_jobs(self, app: str | None = None, limit: int = 50, environment: str | None = None) -> list[Job]:
        with self._lock:
            found = [self._copy(j) for _, j in sorted(self._jobs.items(), reverse=True)
                     if (not app or j.app == app) and (not environment or j.environment == environment)]
        return found[:limit] if limit >= 0 else found  # SQL: LIMIT -1 is no limit

    def pending_deploy(self, app: str, commit: str, environment: str = DEFAULT_ENVIRONMENT) -> Job | None:
        for job in self.list_jobs(app, limit=10, environment=environment):
            if job.kind == "deploy" and job.payload.get("commit") == commit and not job.status.finished:
                return job
        return None

    def claim_next(self) -> Job | None:
        with self._lock:
            busy = {(j.app, j.environment) for j in self._jobs.values() if j.status == JobStatus.RUNNING}
            for job_id, job in sorted(self._jobs.items()):
                if job.status == JobStatus.QUEUED and (job.app, job.environment) not in busy:
                    self._jobs[job_id] = replace(job, status=JobStatus.RUNNING, started_at=_now(),
                                                 attempts=job.attempts + 1)
                    return self._copy(self._jobs[job_id])
            return None

    def running_count(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.status == JobStatus.RUNNING)

    def requeue_interrupted(self, max_attempts: int) -> tuple[list[int], list[int]]:
        with self._lock:
            running = [j for _, j in sorted(self._jobs.items()) if j.status == JobStatus.RUNNING]
            again = [j.id for j in running if j.attempts < max_attempts]
            failed = [j.id for j in running if j.attempts >= max_attempts]
            for job_id in again:
                self._jobs[job_id] = replace(self._jobs[job_id], status=JobStatus.QUEUED)
            for job_id in failed:
                self._jobs[job_id] = replace(
                    self._jobs[job_id], status=JobStatus.FAILED, finished_at=_now(),
                    error=f"dockyard stopped while this job ran, {max_attempts} times: it is not tried again")
            return again, failed

    def finish_job(self, job_id: int, status: JobStatus, error: str | None = None) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:  # as an UPDATE of no row: nothing
                self._jobs[job_id] = replace(job, status=status, error=error, finished_at=_now())

    def release_of_job(self, job_id: int) -> int | None:
        with self._lock:
            return max((i for i, r in self._releases.items() if r["job_id"] == job_id), default=None)

    def append_log(self, job_id: int, line: str) -> None:
        with self._lock:
            self._logs[_next_id(iter(self._logs))] = (job_id, line)

    def job_logs(self, job_id: int, after: int = 0) -> list[tuple[int, str]]:
        with self._lock:
            return [(i, line) for i, (j, line) in sorted(self._logs.items()) if j == job_id and i > after]

    # -- images ---------------------------------------------------------------------------
    def add_image(self, image: BuiltImage) -> None:
        with self._lock:
            self._images[_next_id(iter(self._images))] = replace(image, created_at=_now())

    def list_images(self, app: str) -> list[BuiltImage]:
        with self._lock:
            return [im for _, im in sorted(self._images.items(), reverse=True) if im.app == app]

    def collect_images(self, app: str, repository: str, digest: str) -> int:
        with self._lock:
            gone = [k for k, im in self._images.items() if (im.app, im.repository, im.digest) == (app, repository, digest)]
            for key in sorted(gone):
                image = self._images.pop(key)
                self._collected.setdefault((image.repository, image.tag), image.image_id)
            return len(gone)

    def collected_image(self, repository: str, tag: str) -> str | None:
        with self._lock:
            return self._collected.get((repository, tag))

    # -- repos ----------------------------------------------------------------------------
    def add_repo(self, repo: SourceRepo) -> SourceRepo:
        with self._lock:
            if repo.role == "deploy" and any(r.role == "deploy" for k, r in self._repos.items() if k[0] == repo.app):
                raise Conflict(f"{repo.app} has a deploy repo already", f"list them: dockyard repos list {repo.app}")
            if (repo.app, repo.name) in self._repos:
                raise Conflict(f"{repo.app} has a repo named {repo.name!r} already",
                               f"pick another name, or remove it first: dockyard repos remove {repo.app} {repo.name}")
            self._repos[(repo.app, repo.name)] = replace(repo, created_at=_now())
            return self._repos[(repo.app, repo.name)]

    def get_repo(self, app: str, name: str) -> SourceRepo:
        with self._lock:
            if (app, name) not in self._repos:
                raise NotFound(f"{app} has no repo named {name!r}", f"list them: dockyard repos list {app}")
            return self._repos[(app, name)]

    def repos(self, app: str) -> list[SourceRepo]:
        with self._lock:
            return [r for (a, _), r in self._repos.items() if a == app]

    def remove_repo(self, app: str, name: str) -> None:
        self.get_repo(app, name)
        with self._lock:
            del self._repos[(app, name)]

    # -- releases -------------------------------------------------------------------------
    def create_release(self, app: str, environment: str, commit: str, job_id: int | None) -> int:
        with self._lock:
            release_id = _next_id(iter(self._releases))
            self._releases[release_id] = {
                "id": release_id, "app": app, "environment": environment, "commit": commit,
                "status": ReleaseStatus.PENDING.value, "services": "[]", "job_id": job_id, "error": None,
                "created_at": _now(), "finished_at": None, "config": "{}", "artifact": "[]", "timeline": "{}"}
            return release_id

    def set_release(self, release_id: int, status: ReleaseStatus, services: tuple[ServiceSpec, ...] | None = None,
                    error: str | None = None) -> None:
        with self._lock:
            row = self._releases.get(release_id)
            if row is None:  # as an UPDATE of no row: nothing
                return
            row["status"], row["error"] = ReleaseStatus(status).value, error
            if services is not None:
                row["services"] = json.dumps([asdict(s) for s in services])
            if status != ReleaseStatus.PENDING:
                row["finished_at"] = _now()

    def supersede(self, app: str, environment: str, live_id: int) -> None:
        with self._lock:
            for row in self._releases.values():
                if (row["app"], row["environment"], row["status"]) == (app, environment, ReleaseStatus.LIVE) \
                        and row["id"] != live_id:
                    row["status"] = ReleaseStatus.SUPERSEDED.value

    def list_releases(self, app: str, limit: int = 20, environment: str | None = None) -> list[ReleaseRecord]:
        with self._lock:
            found = [self._release(r) for _, r in sorted(self._releases.items(), reverse=True)
                     if r["app"] == app and (environment is None or r["environment"] == environment)]
        return found[:limit] if limit >= 0 else found

    def set_release_artifact(self, release_id: int, services: tuple[ServiceSpec, ...]) -> None:
        with self._lock:
            row = self._releases.get(release_id)
            if row is not None:
                row["artifact"] = json.dumps([asdict(s) for s in services])

    def set_release_timeline(self, release_id: int, timeline: Mapping[str, object]) -> None:
        with self._lock:
            row = self._releases.get(release_id)
            if row is not None:
                row["timeline"] = json.dumps(timeline)

    def set_release_config(self, release_id: int, config: Mapping[str, object]) -> None:
        with self._lock:
            row = self._releases.get(release_id)
            if row is not None:
                row["config"] = json.dumps(config)

    @staticmethod
    def _release(row: dict[str, Any]) -> ReleaseRecord:
        """As SqlStore's: the row's columns, services, artifact and config read back from their JSON."""
        return release_from_row(row, json.loads(row["services"]), json.loads(row["artifact"] or "[]"),
                                json.loads(row["config"] or "{}"))

    def get_release(self, release_id: int) -> ReleaseRecord:
        with self._lock:
            row = self._releases.get(release_id)
            if row is None:
                raise NotFound(f"no release {release_id}")
            return self._release(row)

    def live_release(self, app: str, environment: str) -> ReleaseRecord | None:
        with self._lock:
            for _, row in sorted(self._releases.items(), reverse=True):
                if (row["app"], row["environment"], row["status"]) == (app, environment, ReleaseStatus.LIVE):
                    return self._release(row)
            return None

    # -- variables and secrets ------------------------------------------------------------
    def variables(self, app: str, environment: str) -> dict[str, str]:
        with self._lock:
            found = self._variables.get((app, environment), {})
            return {k: found[k] for k in sorted(found)}

    def set_variables(self, app: str, environment: str, changes: Mapping[str, str | None]) -> dict[str, str]:
        with self._lock:
            found = self._variables.setdefault((app, environment), {})
            for key, value in changes.items():
                if value is None:
                    found.pop(key, None)
                else:
                    found[key] = value
            if not found:
                del self._variables[(app, environment)]
            return self.variables(app, environment)

    def secrets(self, app: str, environment: str) -> list[SecretVersion]:
        with self._lock:
            kept = sorted((key[2], versions) for key, versions in self._secrets.items()
                          if key[:2] == (app, environment) and versions)
            result = []
            for name, versions in kept:
                newest = max(versions)
                result.append(SecretVersion(
                    app=app, environment=environment, name=name, version=newest, key_id=versions[newest][0],
                    versions=len(versions), created_at=min(v[2] for v in versions.values()),
                    updated_at=max(v[2] for v in versions.values())))
            return result

    def add_secret(self, app: str, environment: str, name: str,
                   seal: Callable[[int], tuple[str, bytes]]) -> SecretVersion:
        key = (app, environment, name)
        with self._lock:
            versions = self._secrets.get(key, {})
            version = max(versions, default=self._removed.get(key, 0)) + 1
            key_id, ciphertext = seal(version)
            self._removed.pop(key, None)
            self._secrets.setdefault(key, {})[version] = (key_id, bytes(ciphertext), _now())
            self._secret_order[(*key, version)] = next(self._secret_serial)
            return next(v for v in self.secrets(app, environment) if v.name == name)

    def sealed_secret(self, app: str, environment: str, name: str, version: int) -> SealedSecret:
        with self._lock:
            found = self._secrets.get((app, environment, name), {}).get(version)
        if found is None:
            raise NotFound(f"no version {version} of secret {name!r} in {app} ({environment})",
                           f"list them with: dockyard secrets list {app} --env {environment}")
        return SealedSecret(app, environment, name, version, found[0], found[1])

    def sealed_secrets(self, app: str | None = None) -> list[SealedSecret]:
        with self._lock:
            return [SealedSecret(a, env, name, version, *self._secrets[(a, env, name)][version][:2])
                    for (a, env, name, version) in sorted(self._secret_order, key=self._secret_order.__getitem__)
                    if app is None or a == app]

    def remove_secret(self, app: str, environment: str, name: str) -> None:
        key = (app, environment, name)
        with self._lock:
            versions = self._secrets.get(key)
            if not versions:
                raise NotFound(f"no secret named {name!r} in {app} ({environment})",
                               f"list them with: dockyard secrets list {app} --env {environment}")
            self._removed[key] = max(versions)
            del self._secrets[key]
            for order in [k for k in self._secret_order if k[:3] == key]:
                del self._secret_order[order]

    def reseal_secrets(self, reseal: Callable[[SealedSecret], tuple[str, bytes]]) -> int:
        with self._lock:
            sealed = self.sealed_secrets()
            resealed = [reseal(s) for s in sealed]  # all first: a failure changes nothing
            for s, (key_id, ciphertext) in zip(sealed, resealed, strict=True):
                versions = self._secrets[(s.app, s.environment, s.name)]
                versions[s.version] = (key_id, bytes(ciphertext), versions[s.version][2])
            return len(sealed)


def _is_a_store(s: FakeStore) -> Store:
    """mypy checks here that FakeStore has every method of the Store port, with its signature."""
    return s


class FakeVolumeArchives:
    """Volumes' files as tar streams in a dict: ``files[(app, env, volume)] = bytes``. Events go to
    ``log`` (services/backups.py's VolumeArchiver)."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.log: list[str] = log if log is not None else []

    def export(self, app: str, environment: str, volume: str, write: Callable[[bytes], object]) -> None:
        self.log.append(f"export {environment}/{volume}")
        write(self.files.get((app, environment, volume), b""))

    def import_(self, app: str, environment: str, volume: str, read: Callable[[int], bytes]) -> None:
        self.log.append(f"import {environment}/{volume}")
        data = bytearray()
        while chunk := read(65536):
            data += chunk
        self.files[(app, environment, volume)] = bytes(data)
