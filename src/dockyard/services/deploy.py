"""The deploy pipeline: a pushed commit → images built and pushed (services/build.py) → a release
live behind the proxy (services/release.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from dockyard.domain import declared as decl
from dockyard.domain import hosts, names, replicas, value_stream, volumes
from dockyard.domain import images as img
from dockyard.domain.dockyard_file import DockyardFile
from dockyard.domain.errors import DockyardError
from dockyard.domain.model import DEFAULT_ENVIRONMENT, App, Job, ServiceSpec
from dockyard.domain.records import service_from_dict
from dockyard.planning.changes import UNBUILT
from dockyard.ports import ImageBuilder, Orchestrator, Proxy, Registry, SourceRepos, Store
from dockyard.services import inspect, stages
from dockyard.services.build import Builds, Contexts
from dockyard.services.configuration import Configuration
from dockyard.services.events import SERVER, Event, Events
from dockyard.services.release import Releaser
from dockyard.services.release_commands import AFTER, BEFORE, run_commands
from dockyard.services.sources import SourceBuilds

Say = Callable[[str], None]
Inspect = Callable[..., inspect.Inspection]  # inspect.inspect_source (a bounded child) or parse_source
__all__ = ["Deployer", "service_from_dict"]


@dataclass
class Deployer:
    """Builds a pushed commit's images, then releases them: the deploy pipeline."""

    store: Store
    repos: SourceRepos
    builder: ImageBuilder
    registry: Registry
    orchestrator: Orchestrator
    proxy: Proxy
    base_domain: str
    proxy_port: int
    route_prefix: str
    ready_timeout: float
    inspector: Inspect = inspect.inspect_source
    resolve: Callable[[str], list[str]] = field(default=lambda host: [])  # for ADD URLs' hosts
    configuration: Configuration | None = None  # the environment's variables and secrets
    reserved_ports: Mapping[int, str] = field(default_factory=dict)  # dockyard's own host ports: port -> what
    drain_timeout: float = 30.0  # DOCKYARD_DRAIN_TIMEOUT, DOCKYARD_MONITOR_SECONDS, DOCKYARD_PROGRESS_DEADLINE
    monitor_seconds: float = 5.0
    progress_deadline: float = 900.0
    events: Events | None = None  # told of an admin's override of the stage graph
    builds: Builds = field(init=False)
    sources: SourceBuilds = field(init=False)
    releaser: Releaser = field(init=False)
    # one build of an app at a time (two environments deploying one commit build it once: the
    # second finds every layer built); releases of its environments run side by side
    _build_locks: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _build_locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.builds = Builds(self.store, self.repos, self.builder, self.registry, self.resolve)
        self.sources = SourceBuilds(self.store, self.repos, self.builder, self.builds, self.images_of)
        self.releaser = Releaser(self.store, self.orchestrator, self.proxy, self.proxy_port, self.route_prefix,
                                 self.ready_timeout,
                                 prepare=self.configuration.resolve if self.configuration is not None else None,
                                 reserved=self.reserved_ports, drain_timeout=self.drain_timeout,
                                 monitor_seconds=self.monitor_seconds, progress_deadline=self.progress_deadline)

    # -- the job --------------------------------------------------------------------------
    def _build_lock(self, app: str) -> threading.Lock:
        with self._build_locks_guard:
            return self._build_locks.setdefault(app, threading.Lock())

    def deploy_job(self, job: Job, say: Say) -> None:
        app = self.store.get_app(job.app)
        environment = self.store.get_environment(app.name, job.environment)
        env = environment.name
        commit = job.payload["commit"]
        repo = job.payload.get("repo", "")  # a push to a source repo: its images, then the deploy repo's stack
        branch = job.payload.get("branch", app.deploy_branch)
        if job.payload.get("await_push") and job.attempts <= 1:  # a resumed job's push is long done
            self._await_push(names.repo_key(app.name, repo), branch, commit, job.payload.get("tag") == "true")
        where = "" if env == DEFAULT_ENVIRONMENT else f" to {env}"
        build_started = datetime.now(UTC)
        pushed = (names.repo_key(app.name, repo), commit, self.sources.last_built(app.name, repo, branch)) \
            if repo else None
        with ThreadPoolExecutor(max_workers=1) as pushes:
            try:
                if repo:
                    with self._build_lock(app.name):
                        self.sources.build(app, repo, commit, branch, say, pushes)
                    stack = self._stack_head(app, branch, say)
                    if stack is None:
                        say(f"-----> {app.name}'s deploy repo has no branch {branch!r} nor {app.deploy_branch!r} yet: "
                            f"the images are built, and the first push of the stack releases them")
                        return
                    commit = stack
                say(f"-----> Deploying {app.name} at {commit[:10]} ({job.payload.get('branch', '?')}){where}")
                with Contexts(self.repos, app.name, commit) as contexts:
                    if any(img.is_dockerfile(p) and "/" not in p for p in self.repos.files(app.name, commit)):
                        # a Dockerfile at the root builds there: its context's tar is written while the
                        # commit is inspected (in the pushes' thread: the first push follows the first build)
                        contexts.ahead("", pushes)
                    found = self.inspect(app, commit, env)
                    self._check_stage(job, app.name, env, commit, say)
                    env_branch = app.deploy_branch if environment.is_production else environment.branch
                    for warning in (*found.warnings, *decl.setting_conflicts(found.declared, environment, env_branch)):
                        say(f" !     warning: {warning}")
                    with self._build_lock(app.name):
                        built = self.builds.build_all(app, commit, list(found.images), say, pushes, contexts)
                    built_at = datetime.now(UTC)
            except Exception:
                say(" !     Nothing was released; the previous release keeps serving.")
                raise
            # images the app's repos built: of the pushed branch first (a tag's: the environment's)
            builds_of = (env_branch or app.deploy_branch) if job.payload.get("tag") == "true" else branch
            services = self.sources.resolve(app, found.services, builds_of, say)
            services = inspect.with_references(services, {b.spec.key: b.reference for b in built})
            ids = {b.reference: b.image_id for b in built}
            commit_services = self.resolve_images(tuple(replace(s, image_id=ids.get(s.image, s.image_id)) for s in services),
                                                  say)
            services, config = self.configure(app, env, commit_services, found)

            def pinned(of: tuple[ServiceSpec, ...] = services) -> tuple[ServiceSpec, ...]:
                """The services with every built image pinned by its registry digest."""
                digests = {b.reference: b.push.result() for b in built}
                return tuple(replace(s, image=digests.get(s.image, s.image)) for s in of)

            # Containers start while the images are pushed; traffic moves once both are done.
            try:
                self.release_commands(app.name, env, services, found.declared, BEFORE, job.id, say)
                self.releaser.release(app, env, commit, services, job.id, say, pinned=pinned, config=config,
                                      artifact=lambda: pinned(commit_services), force=job.payload.get("force") == "true",
                                      timeline=self._timeline(job, app.name, env, pushed or (app.name, commit, None),
                                                              build_started, built_at))
                self.release_commands(app.name, env, services, found.declared, AFTER, job.id, say)
            finally:
                if self.configuration is not None:
                    self.configuration.prune(app.name)  # secret files of stopped containers

    def _check_stage(self, job: Job, app: str, env: str, commit: str, say: Say) -> None:
        """An environment that takes its releases from another (services/stages.py) gets a direct
        deploy only from an admin: an override of the stage graph, said and published."""
        source = stages.promoted_from(self.store, self.repos, app, env, commit)
        if source is None:
            return
        if job.payload.get("override") != "true":
            raise DockyardError(f"{env} takes its releases from {source} (dockyard.yml promotion): a direct deploy "
                                "overrides the stage graph, which only an admin may do",
                                f"approve the release waiting for {env}: dockyard approvals {app}")
        say(f" !     {env} takes its releases from {source}: this deploy by an admin overrides the stage graph")
        if self.events is not None:
            self.events.publish(Event("promotion.overridden", job.payload.get("actor") or SERVER, SERVER, app, env,
                                      {"job": job.id, "commit": job.payload.get("commit", ""), "from": source}))

    def _timeline(self, job: Job, app: str, env: str, source: tuple[str, str, str | None], build_started: datetime,
                  built_at: datetime) -> dict[str, object]:
        """The value stream's moments this deploy knows (domain/value_stream.py): the commits it
        brings over the environment's live release (``source``: repo key, commit, and the commit it
        brings commits since, None: the live release's), when they were pushed and built."""
        key, commit, since = source
        if key == app:
            live = self.store.live_release(app, env)
            since = live.commit if live is not None else None
        try:
            commits = self.repos.commits(key, commit, since)
        except DockyardError:
            commits = []
        pushed = job.created_at if job.payload.get("await_push") else None  # queued by the push itself
        return value_stream.recorded(commits, pushed, build_started, built_at)

    def resolve_images(self, services: tuple[ServiceSpec, ...], say: Say | None = None,
                       pull: bool = True) -> tuple[ServiceSpec, ...]:
        """Each service's image as the target has it: an image named by a tag (``redis:7``) is
        pinned by its digest (and its content id); the anonymous volumes its VOLUMEs declare
        get volumes of their own, kept across releases (the service becomes stop-first). An
        image not built yet (``dockyard plan``), or missing and not ``pull``ed, stays as it is."""
        out = []
        for s in services:
            facts = None if s.image.startswith(UNBUILT) else self.orchestrator.resolve_image(s.image_id or s.image, pull)
            if facts is None:
                out.append(s)
                continue
            image, image_id = s.image, s.image_id
            if not image_id:  # not built here: pinned as the target has it now
                image, image_id = facts.pinned or s.image, facts.image_id
                if say is not None:
                    say(f"       {s.name}: {s.image} is {(facts.pinned or facts.image_id).rsplit('@', 1)[-1][:19]}")
            kept = volumes.kept(s.name, facts.volumes, s.volumes)
            if kept and say is not None:
                say(f"       {s.name}: its image's VOLUME {', '.join(m.split(':')[1] for m in kept)} kept across releases")
            out.append(replace(s, image=image, image_id=image_id, volumes=s.volumes + kept))
        return tuple(out)

    def configure(self, app: App, env: str, services: tuple[ServiceSpec, ...], found: inspect.Inspection,
                  ) -> tuple[tuple[ServiceSpec, ...], dict[str, object] | None]:
        """The commit's services as ``env`` runs them: their hosts moved under the environment's
        site, dockyard.yml's routes added, the environment's variables and secrets (references
        and versions) given; and what the release records of that configuration."""
        declared = found.declared
        services = tuple(replace(s, hosts=hosts.for_environment(s.hosts, app.name, env, self.base_domain))
                         for s in services)
        claims = {a.name: a.domains for a in self.store.list_apps()}
        services = decl.with_routes(services, declared, env, app.name, self.base_domain, claims)
        services = decl.with_ports(services, declared, env)
        services = decl.with_replicas(services, declared, env)
        services = replicas.scaled(services, dict(self.store.get_environment(app.name, env).replicas))
        services = decl.with_stateful(services, declared, env)
        services = decl.with_health(services, declared, env)
        if self.configuration is None:
            return services, None
        variables = inspect.declared_variables(declared, env, {})
        return self.configuration.apply(app.name, env, services, variables)

    def release_commands(self, app: str, env: str, services: tuple[ServiceSpec, ...],
                         declared: DockyardFile | None, phase: str, job: int, say: Say) -> None:
        """dockyard.yml's release commands of ``phase`` (services/release_commands.py)."""
        commands = (declared.before if phase == BEFORE else declared.after) if declared is not None else ()
        if commands:
            run_commands(self.orchestrator, self.configuration, app, env, services, commands, phase, job, say)

    def _stack_head(self, app: App, branch: str, say: Say) -> str | None:
        """The deploy repo's commit a source repo's push releases: the head of the same branch,
        else of the app's deploy branch (None: nothing pushed to either yet)."""
        for name in dict.fromkeys((branch, app.deploy_branch)):
            head = self.repos.head(app.name, name)
            if head is not None:
                if name != branch:
                    say(f"       the deploy repo has no branch {branch!r}: its stack is taken from {name!r}")
                return head
        return None

    def images_of(self, app: App, key: str, commit: str, incoming: str = "") -> tuple[img.ImageSpec, ...]:
        """A source repo's images at ``commit``, parsed within bounds (its Dockerfiles only);
        ``incoming``: the commit is being pushed (as for ``inspect``)."""
        return self.inspector(self.repos.files(key, commit, incoming),
                              lambda path, limit: self.repos.read(key, commit, path, limit, incoming),
                              app.name, base_domain=self.base_domain, registry=self.registry.address,
                              images_only=True).images

    def _await_push(self, app: str, branch: str, commit: str, tag: bool = False, timeout: float = 60.0) -> None:
        """A job queued by the pre-receive hook starts as git finishes storing the push. A branch
        is read from its file (no git process), so it is polled often: a wait here is time the
        push takes to go live; a tag (``branch`` names it) is peeled by git, less often."""
        deadline = time.monotonic() + timeout
        while (self.repos.tag(app, branch) if tag else self.repos.head(app, branch)) != commit:
            if time.monotonic() > deadline:
                raise DockyardError(f"the push of {commit[:10]} to {branch!r} did not complete: nothing deployed",
                                    "push again")
            time.sleep(0.05 if tag else 0.002)

    def inspect(self, app: App, commit: str, environment: str = DEFAULT_ENVIRONMENT,
                incoming: str = "") -> inspect.Inspection:
        """The commit's images and services, parsed within bounds (services/inspect.py), with the
        environment's variables interpolated. ``incoming``: the commit is being pushed, its objects
        are in that quarantine folder (SourceRepos.files)."""
        return self.inspector(
            self.repos.files(app.name, commit, incoming),
            lambda path, limit: self.repos.read(app.name, commit, path, limit, incoming),
            app.name, base_domain=self.base_domain, domains=app.domains, registry=self.registry.address,
            allowed=frozenset(app.host_access),
            variables=self.configuration.variables(app.name, environment) if self.configuration else None,
            environment=environment,
            secret_names=[s.name for s in self.store.secrets(app.name, environment)] if self.configuration else None,
        )

    def build_images(self, app: App, commit: str, say: Say) -> tuple[dict[str, img.ImageSpec], dict[str, str]]:
        """Build and push every image: specs and pinned references, by Dockerfile."""
        found = self.inspect(app, commit)
        with ThreadPoolExecutor(max_workers=1) as pushes:
            built = self.builds.build_all(app, commit, list(found.images), say, pushes)
            return {b.spec.key: b.spec for b in built}, {b.spec.key: b.push.result() for b in built}

    def services_for(self, app: App, commit: str, pinned: dict[str, str]) -> tuple[ServiceSpec, ...]:
        """The commit's services, with the images built from its Dockerfiles as ``pinned`` says."""
        return inspect.with_references(self.inspect(app, commit).services, pinned)

    # -- release and upkeep (services/release.py) -------------------------------------------
    def release(self, app: App, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None, say: Say,
                pinned: Callable[[], tuple[ServiceSpec, ...]] | None = None,
                environment: str = DEFAULT_ENVIRONMENT) -> int:
        return self.releaser.release(app, environment, commit, services, job_id, say, pinned)

    def route_id(self, app: str, service: str, environment: str = DEFAULT_ENVIRONMENT) -> str:
        return self.releaser.route_id(app, service, environment)

    def lock(self, app: str, environment: str = DEFAULT_ENVIRONMENT) -> threading.Lock:
        return self.releaser.lock(app, environment)

    def restore_routes(self, wait: bool = True) -> None:
        self.releaser.restore_routes(wait)

    def restore_app_routes(self, app: str, wait: bool = True) -> None:
        self.releaser.restore_app_routes(app, wait)

    def destroy(self, app: str, environment: str | None = None) -> None:
        """The app's environment (or all of them) taken off its target; volumes stay."""
        self.releaser.destroy(app, environment)
        if self.configuration is not None:
            self.configuration.prune(app)
