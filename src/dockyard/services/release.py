"""Releasing services: start, wait, switch the proxy, stop the old containers, and undo a
release that fails before traffic moved. Also keeps routes pointing at the live containers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.domain.errors import DeployFailed, DockyardError
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
    """Takes an app from what runs to what a release says, one app at a time."""

    store: ReleaseStore
    orchestrator: Orchestrator
    proxy: Proxy
    proxy_port: int
    route_prefix: str
    ready_timeout: float
    prepare: Prepare | None = None
    _locks: dict[str, threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stale: set[str] = field(default_factory=set, init=False, repr=False)  # routes to check after a release

    # -- release --------------------------------------------------------------------------
    def route_id(self, app: str, service: str) -> str:
        return f"{self.route_prefix}-{app}.{service}"  # '.' is in neither name: no two apps collide

    def lock(self, app: str) -> threading.Lock:
        """Held while an app's containers or routes change: a release, a restore of its routes."""
        with self._locks_guard:
            return self._locks.setdefault(app, threading.Lock())

    def release(
        self, app: App, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None, say: Say,
        pinned: Callable[[], tuple[ServiceSpec, ...]] | None = None, config: Mapping[str, object] | None = None,
    ) -> int:
        """Start, wait, switch, stop. ``pinned`` gives the services with their images' digests:
        it is awaited before traffic moves, and the release records what it returns. ``config``:
        the variable names and secret versions the services got, recorded with the release."""
        try:
            with self.lock(app.name):
                return self._release(app, commit, services, job_id, say, pinned, config)
        finally:
            if app.name in self._stale:  # a container changed under the release: check its routes
                self.restore_app_routes(app.name)

    def _release(
        self, app: App, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None, say: Say,
        pinned: Callable[[], tuple[ServiceSpec, ...]] | None, config: Mapping[str, object] | None = None,
    ) -> int:
        release_id = self.store.create_release(app.name, DEFAULT_ENVIRONMENT, commit, job_id)
        self.store.set_release(release_id, ReleaseStatus.PENDING, services)
        if config is not None:
            self.store.set_release_config(release_id, config)
        desired = Release(id=release_id, app=app.name, commit=commit, services=services)
        observed = self.orchestrator.observe(app.name)
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
            self._roll_back(app.name, observed, started, switched, halted)
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
        switched: list[ServiceSpec], halted: list[RunningService],
    ) -> None:
        """Undo a release that failed midway: routes back to the old containers, new ones removed,
        halted ones (stateful services) started again."""
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
        for c in halted:  # after the new ones are gone: their volume is free again
            try:
                self.orchestrator.resume(c)
            except DockyardError:
                continue
            self._stale.add(app)  # it may come back under another address: its routes are checked

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
                case plan.EnsureNetwork(app=app):
                    self.orchestrator.ensure_network(app)
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
        """Point the proxy at every app's live containers (after a start, or when the engine's
        events may have been missed). The proxy's routes and the engine's containers are read
        once for all apps, not once per app."""
        current = {r.id: r for r in self.proxy.routes()}
        observed = self.orchestrator.observe()
        for app in self.store.list_apps():
            self._restore_locked(app.name, wait, current, [c for c in observed if c.app == app.name])

    def restore_app_routes(self, app: str, wait: bool = True) -> None:
        """Point the proxy at the app's live release's running containers; a route that is
        right already is left alone. With ``wait`` False, an app in the middle of a release is
        not waited for: the release checks its routes when it ends."""
        self._restore_locked(app, wait)

    def _restore_locked(self, app: str, wait: bool, current: dict[str, Route] | None = None,
                        observed: list[RunningService] | None = None) -> None:
        lock = self.lock(app)
        if not lock.acquire(blocking=False):
            if not wait:
                self._stale.add(app)
                return
            lock.acquire()
            current = observed = None  # read before a release of the app ended: read again
        try:
            self._stale.discard(app)
            self._restore(app, current, observed)
        finally:
            lock.release()

    def _restore(self, app: str, current: dict[str, Route] | None, observed: list[RunningService] | None) -> None:
        # A service kept unchanged by a release runs in a container of an earlier release:
        # the container that serves is the running one whose spec matches the live release's.
        live = self.store.live_release(app, DEFAULT_ENVIRONMENT)
        if live is None:
            return
        specs = {s.name: s for s in map(service_from_dict, live["services"]) if s.is_web}
        if current is None:
            current = {r.id: r for r in self.proxy.routes()}
        for c in observed if observed is not None else self.orchestrator.observe(app):
            spec = specs.get(c.service)
            if spec and c.upstream and c.state == "running" and c.spec_hash == spec.spec_hash:
                route = Route(self.route_id(app, c.service), spec.hosts, (c.upstream,))
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
