"""Releasing services: start, wait, switch the proxy, stop the old containers, and undo a
release that fails before traffic moved. Also keeps routes pointing at the live containers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.domain import hosts
from dockyard.domain.errors import Conflict, DeployFailed, DockyardError
from dockyard.domain.model import (
    DEFAULT_ENVIRONMENT,
    App,
    Release,
    ReleaseStatus,
    Route,
    RunningService,
    ServiceSpec,
)
from dockyard.planning import deploy as plan
from dockyard.ports import Orchestrator, Proxy, ReleaseStore

Say = Callable[[str], None]
# The service as its container starts (app, environment, service → service): secret values
# resolved and their files in place (services/configuration.py). Its spec_hash is unchanged.
Prepare = Callable[[str, str, ServiceSpec], ServiceSpec]


def service_from_dict(data: dict[str, Any]) -> ServiceSpec:
    """A ServiceSpec back from its stored JSON form."""
    known = set(ServiceSpec.__dataclass_fields__)
    values = {k: v for k, v in data.items() if k in known}
    values["hosts"] = tuple(data.get("hosts", ()))
    values["environment"] = tuple((str(k), str(v)) for k, v in data.get("environment", ()))
    command = data.get("command")
    values["command"] = tuple(command) if command is not None else None
    values["secrets"] = tuple((str(name), int(version)) for name, version in data.get("secrets", ()))
    for key, value in values.items():
        if isinstance(value, list):
            values[key] = tuple(value)
    return ServiceSpec(**values)


@dataclass
class Releaser:
    """Takes an app's environment from what runs to what a release says, one release at a time
    per environment; environments of one app release side by side."""

    store: ReleaseStore
    orchestrator: Orchestrator
    proxy: Proxy
    proxy_port: int
    route_prefix: str
    ready_timeout: float
    prepare: Prepare | None = None
    # (app, environment) -> its lock; the environments whose routes to check after their release
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stale: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)

    # -- release --------------------------------------------------------------------------
    def route_id(self, app: str, service: str, environment: str = DEFAULT_ENVIRONMENT) -> str:
        """'.' is in no app, environment or service name, '--' in no app or environment name: no
        two routes collide. Production's ids are those routes had before environments."""
        scope = app if environment == DEFAULT_ENVIRONMENT else f"{app}--{environment}"
        return f"{self.route_prefix}-{scope}.{service}"

    def lock(self, app: str, environment: str = DEFAULT_ENVIRONMENT) -> threading.Lock:
        """Held while an environment's containers or routes change: a release, a restore of its
        routes, its removal."""
        with self._locks_guard:
            return self._locks.setdefault((app, environment), threading.Lock())

    def release(
        self, app: App, environment: str, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None,
        say: Say, pinned: Callable[[], tuple[ServiceSpec, ...]] | None = None,
        config: Mapping[str, object] | None = None,
    ) -> int:
        """Start, wait, switch, stop. ``pinned`` gives the services with their images' digests:
        it is awaited before traffic moves, and the release records what it returns. ``config``:
        the variable names and secret versions the services got, recorded with the release."""
        try:
            with self.lock(app.name, environment):
                return self._release(app, environment, commit, services, job_id, say, pinned, config)
        finally:
            if (app.name, environment) in self._stale:  # a container changed under the release
                self._restore_locked(app.name, environment, True)

    def check_hosts(self, app: str, environment: str, services: tuple[ServiceSpec, ...]) -> None:
        """Refuse hosts another environment of the app routes already."""
        others: dict[str, list[str]] = {}
        for env in self.store.environments(app):
            live = self.store.live_release(app, env.name) if env.name != environment else None
            if live is not None:
                others[env.name] = [h for s in live["services"] for h in s.get("hosts") or ()]
        clash = hosts.clashes((h for s in services for h in s.hosts), others)
        if clash:
            host, other = clash[0]
            raise Conflict(f"{host} answers for {app}'s environment {other} already",
                           "a service named like an environment takes that environment's host: rename the "
                           "service or the environment")

    def _release(
        self, app: App, environment: str, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None,
        say: Say, pinned: Callable[[], tuple[ServiceSpec, ...]] | None, config: Mapping[str, object] | None = None,
    ) -> int:
        self.check_hosts(app.name, environment, services)
        release_id = self.store.create_release(app.name, environment, commit, job_id)
        self.store.set_release(release_id, ReleaseStatus.PENDING, services)
        if config is not None:
            self.store.set_release_config(release_id, config)
        desired = Release(id=release_id, app=app.name, commit=commit, services=services, environment=environment)
        observed = [c for c in self.orchestrator.observe(app.name) if c.environment == environment]
        actions = plan.plan_release(desired, observed)
        cleanup = [a for a in actions if isinstance(a, plan.RemoveRoute | plan.StopContainer)]
        started: dict[str, RunningService] = {}
        switched: list[ServiceSpec] = []
        halted: list[RunningService] = []

        def before_switch() -> None:
            if pinned is not None:
                self.store.set_release(release_id, ReleaseStatus.PENDING, pinned())

        try:
            self._apply(desired, [a for a in actions if a not in cleanup], started, switched, say, before_switch,
                        halted)
        except Exception as exc:
            self._roll_back(app.name, environment, observed, started, switched, halted)
            message = exc.message if isinstance(exc, DockyardError) else f"internal error: {exc!r}"
            self.store.set_release(release_id, ReleaseStatus.FAILED, error=message)
            say(" !     Release failed; the previous release keeps serving.")
            raise
        self.store.set_release(release_id, ReleaseStatus.LIVE)
        self.store.supersede(app.name, environment, release_id)
        say(f"-----> Release {release_id} is live" + ("" if environment == DEFAULT_ENVIRONMENT else f" in {environment}"))
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
        self, app: str, environment: str, observed: list[RunningService], started: dict[str, RunningService],
        switched: list[ServiceSpec], halted: list[RunningService],
    ) -> None:
        """Undo a release that failed midway: routes back to the old containers, new ones removed,
        halted ones (stateful services) started again."""
        for service in switched:
            old = next((c for c in observed if c.service == service.name and c.state == "running" and c.upstream), None)
            try:
                route_id = self.route_id(app, service.name, environment)
                if old is not None and old.upstream is not None:
                    self.proxy.set_route(Route(route_id, service.hosts, (old.upstream,)))
                else:
                    self.proxy.remove_route(route_id)
            except DockyardError:
                continue  # the proxy is down: restore_routes puts the live routes back when it returns
        for c in started.values():
            try:
                self.orchestrator.stop(c)
            except DockyardError:
                continue  # labelled: the next deploy's plan stops it
        for c in halted:  # after the new ones are gone: their volume is free again
            try:
                self.orchestrator.resume(c)
            except DockyardError:
                continue
            self._stale.add((app, environment))  # it may come back under another address: routes are checked

    def _apply(
        self, release: Release, actions: list[plan.Action], started: dict[str, RunningService],
        routed: list[ServiceSpec], say: Say, before_switch: Callable[[], None],
        halted: list[RunningService] | None = None,
    ) -> None:
        running: dict[str, RunningService] = {}
        switching = False
        for action in actions:
            if not switching and isinstance(action, plan.RouteTraffic):
                switching = True
                before_switch()
            match action:
                case plan.EnsureNetwork(app=app, environment=environment):
                    self.orchestrator.ensure_network(app, environment)
                case plan.KeepService(service=service, container=container):
                    running[service.name] = container
                    say(f"-----> {service.name}: unchanged, keeping {container.id[:12]}")
                case plan.StartService(service=service):
                    say(f"-----> Starting {service.name} ({service.image.rsplit('/', 1)[-1][:60]})")
                    starting = service if self.prepare is None else self.prepare(release.app, release.environment,
                                                                                   service)
                    c = self.orchestrator.start(release.app, release.id, release.environment, starting)
                    started[service.name] = running[service.name] = c
                case plan.AwaitReady(service=service):
                    say(f"       waiting for {service.name} to "
                        + ("complete" if service.one_shot else "answer" if service.is_web else "be ready"))
                    self.orchestrator.wait_ready(running[service.name], self.ready_timeout)
                case plan.RouteTraffic(service=service):
                    upstream = running[service.name].upstream
                    if upstream is None:
                        raise DeployFailed(f"service {service.name} publishes no port")
                    route_id = self.route_id(release.app, service.name, release.environment)
                    self.proxy.set_route(Route(route_id, service.hosts, (upstream,)))
                    routed.append(service)
                case plan.RemoveRoute(service=name, environment=environment):
                    self.proxy.remove_route(self.route_id(release.app, name, environment))
                case plan.StopContainer(container=container):
                    say(f"-----> Stopping {container.service} of release {container.release}")
                    self.orchestrator.stop(container)
                case plan.HaltContainer(container=container):
                    say(f"-----> Stopping {container.service} of release {container.release} first: it keeps "
                        "data in a volume, which one container uses at a time")
                    self.orchestrator.halt(container)
                    if halted is not None:
                        halted.append(container)
        if not switching:
            before_switch()

    # -- upkeep ---------------------------------------------------------------------------
    def restore_routes(self, wait: bool = True) -> None:
        """Point the proxy at every environment's live containers (after a start, or when the
        engine's events may have been missed). The proxy's routes and the engine's containers
        are read once for all apps, not once per app."""
        current = {r.id: r for r in self.proxy.routes()}
        observed = self.orchestrator.observe()
        for app in self.store.list_apps():
            for env in self.store.environments(app.name):
                self._restore_locked(app.name, env.name, wait, current,
                                     [c for c in observed if c.app == app.name and c.environment == env.name])

    def restore_app_routes(self, app: str, wait: bool = True) -> None:
        """Point the proxy at the live release's running containers of each of the app's
        environments; a route that is right already is left alone. With ``wait`` False, an
        environment in the middle of a release is not waited for: the release checks its routes
        when it ends."""
        for env in self.store.environments(app):
            self._restore_locked(app, env.name, wait)

    def _restore_locked(self, app: str, environment: str, wait: bool, current: dict[str, Route] | None = None,
                        observed: list[RunningService] | None = None) -> None:
        lock = self.lock(app, environment)
        if not lock.acquire(blocking=False):
            if not wait:
                self._stale.add((app, environment))
                return
            lock.acquire()
            current = observed = None  # read before a release of the environment ended: read again
        try:
            self._stale.discard((app, environment))
            self._restore(app, environment, current, observed)
        finally:
            lock.release()

    def _restore(self, app: str, environment: str, current: dict[str, Route] | None,
                 observed: list[RunningService] | None) -> None:
        # A service kept unchanged by a release runs in a container of an earlier release:
        # the container that serves is the running one whose spec matches the live release's.
        live = self.store.live_release(app, environment)
        if live is None:
            return
        specs = {s.name: s for s in map(service_from_dict, live["services"]) if s.is_web}
        if current is None:
            current = {r.id: r for r in self.proxy.routes()}
        if observed is None:
            observed = [c for c in self.orchestrator.observe(app) if c.environment == environment]
        for c in observed:
            spec = specs.get(c.service)
            if spec and c.upstream and c.state == "running" and c.spec_hash == spec.spec_hash:
                route = Route(self.route_id(app, c.service, environment), spec.hosts, (c.upstream,))
                if current.get(route.id) != route:
                    self.proxy.set_route(route)

    def destroy(self, app: str, environment: str | None = None) -> None:
        """Take the app's environment (or all of them) off its target: routes, containers,
        network. Volumes stay."""
        observed = self.orchestrator.observe(app)
        envs = ({environment} if environment is not None
                else {e.name for e in self.store.environments(app)} | {c.environment for c in observed})
        for env in sorted(envs):
            with self.lock(app, env):
                for action in plan.plan_removal(app, observed, env):
                    if isinstance(action, plan.RemoveRoute):
                        self.proxy.remove_route(self.route_id(app, action.service, action.environment))
                    elif isinstance(action, plan.StopContainer):
                        self.orchestrator.stop(action.container)
                self.orchestrator.remove_network(app, env)
