"""The deploy pipeline: a pushed commit → images built and pushed → a release live behind the proxy."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain import images as img
from dockyard.domain import stack
from dockyard.domain.errors import DeployFailed, DockyardError, InvalidSource
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


@dataclass
class Deployer:
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

    # -- the job --------------------------------------------------------------------------
    def deploy_job(self, job: Job, say: Say) -> None:
        app = self.store.get_app(job.app)
        commit = job.payload["commit"]
        say(f"-----> Deploying {app.name} at {commit[:10]} ({job.payload.get('branch', '?')})")
        specs, pinned = self.build_images(app, commit, say)
        services = self.services_for(app, commit, specs, pinned)
        self.release(app, commit, services, job.id, say)

    # -- build ----------------------------------------------------------------------------
    def source_images(self, app: App, commit: str) -> list[img.ImageSpec]:
        files = self.repos.files(app.name, commit)
        texts = {p: self.repos.read(app.name, commit, p) or "" for p in img.find_dockerfiles(files)}
        return img.discover(texts, app.name)

    def build_images(self, app: App, commit: str, say: Say) -> tuple[dict[str, img.ImageSpec], dict[str, str]]:
        specs = self.source_images(app, commit)
        say(f"-----> {len(specs)} image(s) to build: " + ", ".join(s.dockerfile for s in specs))
        pinned: dict[str, str] = {}
        with tempfile.TemporaryFile() as context:
            self.repos.archive(app.name, commit, context)
            for spec in specs:
                context.seek(0)
                pinned[spec.dockerfile] = self._build_one(app, commit, spec, specs, context, say)
        return {s.dockerfile: s for s in specs}, pinned

    def _build_one(
        self, app: App, commit: str, spec: img.ImageSpec, all_specs: list[img.ImageSpec], context: object, say: Say
    ) -> str:
        say(f"-----> Building {spec.dockerfile} -> {spec.repository(app.name)}")
        image_id = self.builder.build(context, spec.dockerfile, "", lambda line: say(f"       {line}"))  # type: ignore[arg-type]
        repository = spec.repository(app.name)
        version = img.version_for(spec, commit)
        tag = img.tag_for(version)
        bound = self.registry.config_digest(repository, tag)
        if bound is not None and bound != image_id:
            first = version
            version = img.distinct_version(version, commit)
            n = 1
            while (bound := self.registry.config_digest(repository, img.tag_for(version))) not in (None, image_id):
                n += 1
                version = f"{img.distinct_version(first, commit)}.{n}"
            tag = img.tag_for(version)
            say(f" !     WARNING: {repository}:{first} is already bound to another build; this build "
                f"is {repository}:{tag}. Raise VERSION in {spec.dockerfile} to release a new version.")
        reference = f"{self.registry.address}/{repository}:{tag}"
        self.builder.tag(image_id, reference)
        if any(other.depends_on(spec) for other in all_specs) and spec.declared_name:
            self.builder.tag(image_id, f"{spec.declared_name}:{spec.version or 'latest'}")
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
        files = set(self.repos.files(app.name, commit))
        compose = next((f for f in stack.COMPOSE_FILES if f in files), None)
        if compose:
            return stack.compose_services(
                app.name, self.repos.read(app.name, commit, compose) or "", specs, pinned,
                lambda p: self.repos.read(app.name, commit, p), self.base_domain, app.domains,
            )
        if len(specs) == 1:
            web = next(iter(specs))
        elif "Dockerfile" in specs:
            web = "Dockerfile"
        else:
            raise InvalidSource(
                "several Dockerfiles and no compose file: dockyard cannot tell which one is the web service",
                "add a root Dockerfile for the web service, or a docker-compose.yml listing the services",
            )
        return stack.single_image_services(app.name, specs[web], pinned[web], self.base_domain, app.domains)

    # -- release --------------------------------------------------------------------------
    def route_id(self, app: str, service: str) -> str:
        return f"{self.route_prefix}-{app}-{service}"

    def release(self, app: App, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None, say: Say) -> int:
        release_id = self.store.create_release(app.name, DEFAULT_ENVIRONMENT, commit, job_id)
        self.store.set_release(release_id, ReleaseStatus.PENDING, services)
        desired = Release(id=release_id, app=app.name, commit=commit, services=services)
        actions = plan.plan_release(desired, self.orchestrator.observe(app.name))
        started: dict[str, RunningService] = {}
        try:
            switched = self._apply(desired, actions, started, say)
        except DockyardError as exc:
            for c in started.values():
                self.orchestrator.stop(c)
            self.store.set_release(release_id, ReleaseStatus.FAILED, error=exc.message)
            say(" !     Release failed; the previous release keeps serving.")
            raise
        self.store.set_release(release_id, ReleaseStatus.LIVE)
        self.store.supersede(app.name, DEFAULT_ENVIRONMENT, release_id)
        say(f"-----> Release {release_id} is live")
        for service in switched:
            for host in service.hosts:
                say(f"       http://{host}:{self.proxy_port}/")
        return release_id

    def _apply(
        self, release: Release, actions: list[plan.Action], started: dict[str, RunningService], say: Say
    ) -> list[ServiceSpec]:
        running: dict[str, RunningService] = {}
        routed: list[ServiceSpec] = []
        for action in actions:
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
        return routed

    # -- upkeep ---------------------------------------------------------------------------
    def restore_routes(self) -> None:
        """After a start: point the proxy at the live release's running containers."""
        for app in self.store.list_apps():
            live = self.store.live_release(app.name, DEFAULT_ENVIRONMENT)
            if live is None:
                continue
            hosts = {s["name"]: tuple(s["hosts"]) for s in live["services"]}
            for c in self.orchestrator.observe(app.name):
                if c.release == live["id"] and c.upstream and c.service in hosts and c.state == "running":
                    self.proxy.set_route(Route(self.route_id(app.name, c.service), hosts[c.service], (c.upstream,)))

    def destroy(self, app: str) -> None:
        for action in plan.plan_removal(app, self.orchestrator.observe(app)):
            if isinstance(action, plan.RemoveRoute):
                self.proxy.remove_route(self.route_id(app, action.service))
            elif isinstance(action, plan.StopContainer):
                self.orchestrator.stop(action.container)
        self.orchestrator.remove_network(app)
