"""The deploy pipeline: a pushed commit → images built and pushed → a release live behind the proxy."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO, Any

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain import images as img
from dockyard.domain import stack
from dockyard.domain.errors import DeployFailed, DockyardError
from dockyard.domain.model import (
    DEFAULT_ENVIRONMENT,
    App,
    BuiltImage,
    Job,
    Release,
    ReleaseStatus,
    Route,
    RunningService,
    ServiceSpec,
)
from dockyard.planning import deploy as plan
from dockyard.ports import ImageBuilder, Orchestrator, Proxy, Registry, SourceRepos

Say = Callable[[str], None]


def service_from_dict(data: dict[str, Any]) -> ServiceSpec:
    """A ServiceSpec back from its stored JSON form."""
    command = data.get("command")
    return ServiceSpec(
        name=data["name"], image=data["image"], port=data.get("port"), hosts=tuple(data.get("hosts", ())),
        environment=tuple((str(k), str(v)) for k, v in data.get("environment", ())),
        command=tuple(command) if command is not None else None, depends_on=tuple(data.get("depends_on", ())),
        image_id=data.get("image_id", ""),
    )


@dataclass(frozen=True)
class Built:
    """An image built for a release; its push runs in the background."""

    spec: img.ImageSpec
    image_id: str
    reference: str  # registry/app/name:tag
    push: Future[str]  # the reference pinned by digest, once pushed


@dataclass
class Deployer:
    """Builds a pushed commit's images, then releases them: the deploy pipeline."""

    store: SqlStore
    repos: SourceRepos
    builder: ImageBuilder
    registry: Registry
    orchestrator: Orchestrator
    proxy: Proxy
    base_domain: str
    proxy_port: int
    route_prefix: str
    ready_timeout: float
    _locks: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _build_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- the job --------------------------------------------------------------------------
    def deploy_job(self, job: Job, say: Say) -> None:
        app = self.store.get_app(job.app)
        commit = job.payload["commit"]
        if job.payload.get("await_push") and job.attempts <= 1:  # a resumed job's push is long done
            self._await_push(app.name, job.payload.get("branch", app.deploy_branch), commit)
        say(f"-----> Deploying {app.name} at {commit[:10]} ({job.payload.get('branch', '?')})")
        with ThreadPoolExecutor(max_workers=1) as pushes:
            built = self._build_all(app, commit, say, pushes)
            specs = {b.spec.dockerfile: b.spec for b in built}
            services = self.services_for(app, commit, specs, {b.spec.dockerfile: b.reference for b in built})
            ids = {b.reference: b.image_id for b in built}
            services = tuple(replace(s, image_id=ids.get(s.image, "")) for s in services)

            def pinned() -> tuple[ServiceSpec, ...]:
                """The services with every built image pinned by its registry digest."""
                digests = {b.reference: b.push.result() for b in built}
                return tuple(replace(s, image=digests.get(s.image, s.image)) for s in services)

            # Containers start while the images are pushed; traffic moves once both are done.
            self.release(app, commit, services, job.id, say, pinned=pinned)

    def _await_push(self, app: str, branch: str, commit: str, timeout: float = 60.0) -> None:
        """A job queued by the pre-receive hook starts as git finishes storing the push."""
        deadline = time.monotonic() + timeout
        while self.repos.head(app, branch) != commit:
            if time.monotonic() > deadline:
                raise DockyardError(f"the push of {commit[:10]} to {branch!r} did not complete: nothing deployed",
                                    "push again")
            time.sleep(0.01)

    # -- build ----------------------------------------------------------------------------
    def source_images(self, app: App, commit: str) -> list[img.ImageSpec]:
        files = self.repos.files(app.name, commit)
        texts = {p: self.repos.read(app.name, commit, p) or "" for p in img.find_dockerfiles(files)}
        return img.discover(texts, app.name)

    def _build_all(self, app: App, commit: str, say: Say, pushes: ThreadPoolExecutor) -> list[Built]:
        """Build every image in dependency order; each is pushed in the background once built.

        An image that another builds FROM is tagged under its header name for the time of the
        build, and the tag is given back afterwards: builds run one at a time, so no other app
        ever sees that tag."""
        specs = self.source_images(app, commit)
        say(f"-----> {len(specs)} image(s) to build: " + ", ".join(s.dockerfile for s in specs))
        built: list[Built] = []
        aliases: dict[str, str | None] = {}  # tag -> the image it named before, to give it back
        with self._build_lock, contextlib.ExitStack() as stack:
            contexts: dict[str, IO[bytes]] = {}
            try:
                for spec in specs:
                    if spec.context not in contexts:
                        contexts[spec.context] = stack.enter_context(tempfile.TemporaryFile())
                        self.repos.archive(app.name, commit, contexts[spec.context], spec.context)
                    context = contexts[spec.context]
                    context.seek(0)
                    image_id, version = self._build_one(app, commit, spec, context, say)
                    reference = f"{self.registry.address}/{spec.repository(app.name)}:{img.tag_for(version)}"
                    self.builder.tag(image_id, reference)
                    if spec.declared_name and any(other.depends_on(spec) for other in specs):
                        alias = f"{spec.declared_name}:{spec.version or 'latest'}"
                        aliases.setdefault(alias, self.builder.image_id(alias))
                        self.builder.tag(image_id, alias)
                    push = pushes.submit(self._push, app, commit, spec, image_id, version, reference, say)
                    built.append(Built(spec, image_id, reference, push))
            finally:
                for alias, before in aliases.items():
                    if before is None:
                        self.builder.untag(alias)
                    else:
                        self.builder.tag(before, alias)
        return built

    def build_images(self, app: App, commit: str, say: Say) -> tuple[dict[str, img.ImageSpec], dict[str, str]]:
        """Build and push every image: specs and pinned references, by Dockerfile."""
        with ThreadPoolExecutor(max_workers=1) as pushes:
            built = self._build_all(app, commit, say, pushes)
            return {b.spec.dockerfile: b.spec for b in built}, {b.spec.dockerfile: b.push.result() for b in built}

    def _build_one(self, app: App, commit: str, spec: img.ImageSpec, context: IO[bytes], say: Say) -> tuple[str, str]:
        """Build one image; return its id and the version it is released under."""
        repository = spec.repository(app.name)
        say(f"-----> Building {spec.dockerfile} -> {repository}")
        version = img.version_for(spec, commit)
        candidates = list(dict.fromkeys([version, img.distinct_version(version, commit)]))
        # Which tags are taken is asked of the registry while the image builds.
        with ThreadPoolExecutor(max_workers=len(candidates)) as pool:
            lookups = [pool.submit(self.registry.config_digest, repository, img.tag_for(v)) for v in candidates]
            image_id = self.builder.build(context, spec.dockerfile_in_context, "", lambda line: say(f"       {line}"))
            bound = [f.result() for f in lookups]
        n = 1
        while bound[0] not in (None, image_id):
            candidates.pop(0)
            bound.pop(0)
            if not candidates:
                n += 1
                candidates = [f"{img.distinct_version(version, commit)}.{n}"]
                bound = [self.registry.config_digest(repository, img.tag_for(candidates[0]))]
        if candidates[0] != version:
            say(f" !     WARNING: {repository}:{img.tag_for(version)} is already bound to another build; this build "
                f"is {repository}:{img.tag_for(candidates[0])}. Raise VERSION in {spec.dockerfile} to release a new "
                "version.")
        return image_id, candidates[0]

    def _push(
        self, app: App, commit: str, spec: img.ImageSpec, image_id: str, version: str, reference: str, say: Say
    ) -> str:
        """Push one image; record it; return its reference pinned by digest."""
        repository, tag = spec.repository(app.name), img.tag_for(version)
        say(f"-----> Pushing {reference}")
        digest = self.builder.push(reference, lambda line: say(f"       {line}"))
        size = self.builder.size(image_id)
        self.store.add_image(BuiltImage(
            app=app.name, repository=repository, version=version, tag=tag, digest=digest, image_id=image_id,
            commit=commit, size=size, dockerfile=spec.dockerfile,
        ))
        say(f"       {repository}:{tag} is {digest} ({size / 1e6:.1f} MB, version from {spec.version_source})")
        return f"{self.registry.address}/{repository}@{digest}"

    # -- services -------------------------------------------------------------------------
    def services_for(
        self, app: App, commit: str, specs: dict[str, img.ImageSpec], pinned: dict[str, str]
    ) -> tuple[ServiceSpec, ...]:
        return stack.commit_services(
            app.name, set(self.repos.files(app.name, commit)), lambda p: self.repos.read(app.name, commit, p),
            specs, pinned, self.base_domain, app.domains,
        )

    # -- release --------------------------------------------------------------------------
    def route_id(self, app: str, service: str) -> str:
        return f"{self.route_prefix}-{app}.{service}"  # '.' is in neither name: no two apps collide

    def lock(self, app: str) -> threading.Lock:
        """Held while an app's containers or routes change: a release, a restore of its routes."""
        with self._locks_guard:
            return self._locks.setdefault(app, threading.Lock())

    def release(
        self, app: App, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None, say: Say,
        pinned: Callable[[], tuple[ServiceSpec, ...]] | None = None,
    ) -> int:
        """Start, wait, switch, stop. ``pinned`` gives the services with their images' digests:
        it is awaited before traffic moves, and the release records what it returns."""
        with self.lock(app.name):
            return self._release(app, commit, services, job_id, say, pinned)

    def _release(
        self, app: App, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None, say: Say,
        pinned: Callable[[], tuple[ServiceSpec, ...]] | None,
    ) -> int:
        release_id = self.store.create_release(app.name, DEFAULT_ENVIRONMENT, commit, job_id)
        self.store.set_release(release_id, ReleaseStatus.PENDING, services)
        desired = Release(id=release_id, app=app.name, commit=commit, services=services)
        observed = self.orchestrator.observe(app.name)
        actions = plan.plan_release(desired, observed)
        cleanup = [a for a in actions if isinstance(a, plan.RemoveRoute | plan.StopContainer)]
        started: dict[str, RunningService] = {}
        switched: list[ServiceSpec] = []

        def before_switch() -> None:
            if pinned is not None:
                self.store.set_release(release_id, ReleaseStatus.PENDING, pinned())

        try:
            self._apply(desired, [a for a in actions if a not in cleanup], started, switched, say, before_switch)
        except Exception as exc:
            self._roll_back(app.name, observed, started, switched)
            message = exc.message if isinstance(exc, DockyardError) else f"internal error: {exc!r}"
            self.store.set_release(release_id, ReleaseStatus.FAILED, error=message)
            say(" !     Release failed; the previous release keeps serving.")
            raise
        self.store.set_release(release_id, ReleaseStatus.LIVE)
        self.store.supersede(app.name, DEFAULT_ENVIRONMENT, release_id)
        say(f"-----> Release {release_id} is live")
        for service in switched:
            for host in service.hosts:
                say(f"       http://{host}:{self.proxy_port}/")
        # Traffic has moved: what is left is clean-up, and its failures do not undo the release.
        for action in cleanup:
            try:
                self._apply(desired, [action], started, switched, say, lambda: None)
            except DockyardError as exc:
                say(f" !     warning: {exc.message} (the release is live; dockyard retries at the next deploy)")
        return release_id

    def _roll_back(
        self, app: str, observed: list[RunningService], started: dict[str, RunningService],
        switched: list[ServiceSpec],
    ) -> None:
        """Undo a release that failed midway: routes back to the old containers, new ones removed."""
        for service in switched:
            old = next((c for c in observed if c.service == service.name and c.state == "running" and c.upstream), None)
            try:
                if old is not None and old.upstream is not None:
                    self.proxy.set_route(Route(self.route_id(app, service.name), service.hosts, (old.upstream,)))
                else:
                    self.proxy.remove_route(self.route_id(app, service.name))
            except DockyardError:
                continue  # the proxy is down: restore_routes puts the live routes back when it returns
        for c in started.values():
            try:
                self.orchestrator.stop(c)
            except DockyardError:
                continue  # labelled: the next deploy's plan stops it

    def _apply(
        self, release: Release, actions: list[plan.Action], started: dict[str, RunningService],
        routed: list[ServiceSpec], say: Say, before_switch: Callable[[], None],
    ) -> None:
        running: dict[str, RunningService] = {}
        switching = False
        for action in actions:
            if not switching and isinstance(action, plan.RouteTraffic):
                switching = True
                before_switch()
            match action:
                case plan.EnsureNetwork(app=app):
                    self.orchestrator.ensure_network(app)
                case plan.KeepService(service=service, container=container):
                    running[service.name] = container
                    say(f"-----> {service.name}: unchanged, keeping {container.id[:12]}")
                case plan.StartService(service=service):
                    say(f"-----> Starting {service.name} ({service.image.rsplit('/', 1)[-1][:60]})")
                    c = self.orchestrator.start(release.app, release.id, release.environment, service)
                    started[service.name] = running[service.name] = c
                case plan.AwaitReady(service=service):
                    say(f"       waiting for {service.name} to answer")
                    self.orchestrator.wait_ready(running[service.name], self.ready_timeout)
                case plan.RouteTraffic(service=service):
                    upstream = running[service.name].upstream
                    if upstream is None:
                        raise DeployFailed(f"service {service.name} publishes no port")
                    self.proxy.set_route(Route(self.route_id(release.app, service.name), service.hosts, (upstream,)))
                    routed.append(service)
                case plan.RemoveRoute(service=name):
                    self.proxy.remove_route(self.route_id(release.app, name))
                case plan.StopContainer(container=container):
                    say(f"-----> Stopping {container.service} of release {container.release}")
                    self.orchestrator.stop(container)
        if not switching:
            before_switch()

    # -- upkeep ---------------------------------------------------------------------------
    def restore_routes(self) -> None:
        """After a start: point the proxy at the live release's running containers."""
        for app in self.store.list_apps():
            live = self.store.live_release(app.name, DEFAULT_ENVIRONMENT)
            if live is None:
                continue
            with self.lock(app.name):
                # A service kept unchanged by a release runs in a container of an earlier release:
                # the container that serves is the running one whose spec matches the live release's.
                live = self.store.live_release(app.name, DEFAULT_ENVIRONMENT) or live
                specs = {s.name: s for s in map(service_from_dict, live["services"]) if s.is_web}
                current = {r.id: r for r in self.proxy.routes()}
                for c in self.orchestrator.observe(app.name):
                    spec = specs.get(c.service)
                    if spec and c.upstream and c.state == "running" and c.spec_hash == spec.spec_hash:
                        route = Route(self.route_id(app.name, c.service), spec.hosts, (c.upstream,))
                        if current.get(route.id) != route:
                            self.proxy.set_route(route)

    def destroy(self, app: str) -> None:
        with self.lock(app):
            for action in plan.plan_removal(app, self.orchestrator.observe(app)):
                if isinstance(action, plan.RemoveRoute):
                    self.proxy.remove_route(self.route_id(app, action.service))
                elif isinstance(action, plan.StopContainer):
                    self.orchestrator.stop(action.container)
            self.orchestrator.remove_network(app)
