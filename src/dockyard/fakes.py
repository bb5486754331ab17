"""In-memory implementations of the ports, for tests: same contracts as the real adapters
(tests/integration/test_contracts.py runs one suite against both), no engine, no processes.

Production code never imports this module; only tests wire it in place of the adapters.
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
import itertools
import tarfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import IO

from dockyard.domain.configuration import SECRETS_DIR, versions_digest
from dockyard.domain.errors import BuildFailed, Conflict, DeployFailed, DockyardError, NotFound
from dockyard.domain.limits import too_large
from dockyard.domain.model import Route, RunningService, ServiceSpec, Volume
from dockyard.ports import Progress


def _sha256(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


class FakeProxy:
    """Routes in a dict. ``events`` (shareable with a FakeOrchestrator) records every change."""

    def __init__(self, events: list[str] | None = None) -> None:
        self.running = False
        self.events: list[str] = events if events is not None else []
        self._routes: dict[str, Route] = {}

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


class FakeRegistry:
    """Tags bound to image ids. A FakeBuilder's push binds them, as a push to a real registry does."""

    def __init__(self, address: str = "registry.fake:5000") -> None:
        self._address = address
        self.running = False
        self.bound: dict[tuple[str, str], str] = {}  # (repository, tag) -> image id

    @property
    def address(self) -> str:
        return self._address

    def ensure_running(self) -> None:
        self.running = True

    def config_digest(self, repository: str, tag: str) -> str | None:
        return self.bound.get((repository, tag))

    def bind(self, repository: str, tag: str, image_id: str) -> None:
        self.bound[(repository, tag)] = image_id


class FakeBuilder:
    """Builds nothing: an image id is the digest of the Dockerfile's path and the whole context,
    so the same source gives the same id and any change gives another.

    ``fail_builds`` names Dockerfiles whose build fails, as a failing RUN step would.
    """

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry
        self.fail_builds: set[str] = set()
        self.sizes: dict[str, int] = {}  # image id -> size
        self.references: dict[str, str] = {}  # local reference -> image id
        self.pushed: list[str] = []
        self.dockerfiles: dict[str, str | None] = {}  # image id -> the Dockerfile text given instead

    def build(self, context: IO[bytes], dockerfile: str, tag: str, progress: Progress,
              dockerfile_text: str | None = None) -> str:
        data = context.read() + (dockerfile_text or "").encode()
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                names = set(tar.getnames())
        except tarfile.TarError as exc:
            raise BuildFailed(f"{dockerfile}: build failed: the context is not a tar ({exc})") from None
        if dockerfile not in names:
            raise BuildFailed(f"{dockerfile}: build failed: no such file in the context")
        if dockerfile in self.fail_builds:
            raise BuildFailed(f"{dockerfile}: build failed: scripted failure", "fix the Dockerfile")
        image_id = "sha256:" + _sha256("image", dockerfile, data)
        progress(f"Step 1/1 : fake build of {dockerfile}")
        progress(f"Successfully built {image_id[7:19]}")
        self.sizes[image_id] = len(data)
        self.dockerfiles[image_id] = dockerfile_text
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
        return self.references.get(reference)

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


class FakeOrchestrator:
    """Containers in a dict; a started container runs until stopped.

    It keeps the contract the real engine keeps (tests/integration/test_orchestrator_contract.py):
    a web service's upstream is an address on its app network and its own port; ``observe`` never
    lists containers that belong to no app (the data plane's); ``logs`` prefixes each line with
    ``service[rN] | ``, honours ``tail``, and with ``follow`` ends only when ``stop`` is set or the
    app's containers are gone.

    Scripted behaviour, by service name, in place of what a real command would do: services in
    ``fail_start`` cannot be started; those in ``fail_ready`` exit before they are ready and those
    in ``never_ready`` (web services) never answer on their port (``wait_ready`` raises
    DeployFailed either way); ``output`` holds the lines a service prints (what ``logs`` yields, and
    the last output a failure shows). ``events`` (shareable with a FakeProxy) records starts and
    stops in order.
    """

    NETWORK = ipaddress.IPv4Address("10.213.0.0")  # as the real one's default pool

    def __init__(self, events: list[str] | None = None) -> None:
        self.events: list[str] = events if events is not None else []
        self.containers: dict[str, RunningService] = {}
        self.networks: set[str] = set()
        self.fail_start: set[str] = set()
        self.fail_ready: set[str] = set()
        self.never_ready: set[str] = set()
        self.output: dict[str, list[str]] = {}
        self.volume_store: dict[tuple[str, str, str], set[str]] = {}  # (app, env, name) -> containers mounting it
        self._serial = itertools.count(1)
        self._addresses = itertools.count(2)

    def ensure_network(self, app: str) -> None:
        self.networks.add(app)

    def start(self, app: str, release: int, environment: str, service: ServiceSpec) -> RunningService:
        if app not in self.networks:
            raise DeployFailed(f"cannot create {service.name}: network of {app} not found")
        if service.name in self.fail_start:
            raise DeployFailed(f"cannot start {service.name}: scripted failure")
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
        )
        for entry in service.volumes:
            users = self.volume_store.setdefault((app, environment, entry.split(":")[0]), set())
            if any(self.containers[u].state == "running" for u in users if u in self.containers):
                self.events.append(f"SHARED VOLUME {entry.split(':')[0]} {service.name} r{release}")
            users.add(container.id)
        self.containers[container.id] = container
        self.events.append(f"start {service.name} r{release} {container.id[:12]}")
        return container

    def _last_output(self, service: str) -> str:
        return "\n".join(self.output.get(service, [])[-15:])

    def wait_ready(self, container: RunningService, timeout: float) -> None:
        current = self.containers.get(container.id)
        if current is None:
            raise DeployFailed(f"service {container.service} is gone")
        if container.service in self.fail_ready:
            self.containers[container.id] = replace(current, state="exited")
            raise DeployFailed(
                f"service {container.service} exited (code 1) before it was ready. "
                f"Its last output:\n{self._last_output(container.service)}",
                "run it locally with docker run to see why it stops",
            )
        if container.upstream is not None and container.service in self.never_ready:
            raise DeployFailed(
                f"service {container.service} did not answer HTTP on its port within {timeout:.0f}s. "
                f"Its last output:\n{self._last_output(container.service)}",
                "check that it listens on 0.0.0.0 and on the EXPOSEd port",
            )
        self.events.append(f"ready {container.service} r{container.release} {container.id[:12]}")

    def observe(self, app: str | None = None) -> list[RunningService]:
        found = [c for c in self.containers.values() if c.app and (app is None or c.app == app)]
        return sorted(found, key=lambda c: (c.app, c.service, c.release))

    def stop(self, container: RunningService) -> None:
        if self.containers.pop(container.id, None) is not None:
            self.events.append(f"stop {container.service} r{container.release} {container.id[:12]}")
        for users in self.volume_store.values():
            users.discard(container.id)

    def halt(self, container: RunningService) -> None:
        current = self.containers.get(container.id)
        if current is not None:
            self.containers[container.id] = replace(current, state="exited")
            self.events.append(f"halt {container.service} r{container.release} {container.id[:12]}")

    def resume(self, container: RunningService) -> None:
        current = self.containers.get(container.id)
        if current is None:
            raise DeployFailed(f"cannot start {container.service} of release {container.release} again: gone")
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

    def remove_network(self, app: str) -> None:
        self.networks.discard(app)

    def logs(self, app: str, follow: bool, tail: int, stop: threading.Event | None = None) -> Iterator[str]:
        """The scripted ``output`` of the app's running containers, the last ``tail`` lines of
        each; with ``follow``, the iterator then waits until ``stop`` is set or the containers
        are gone (nothing more is ever printed)."""
        running = [c for c in self.observe(app) if c.state == "running"]
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

    def create(self, app: str) -> None:
        self.trees.setdefault(app, {})
        self.heads.setdefault(app, {})

    def delete(self, app: str) -> None:
        self.trees.pop(app, None)
        self.heads.pop(app, None)

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
        return commit

    def _tree(self, app: str, commit: str) -> dict[str, str]:
        tree = self.trees.get(app, {}).get(commit)
        if tree is None:
            raise NotFound(f"no commit {commit!r} in {app!r}")
        return tree

    def files(self, app: str, commit: str) -> list[str]:
        return sorted(self._tree(app, commit))

    def read(self, app: str, commit: str, path: str, limit: int = 1024 * 1024) -> str | None:
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
