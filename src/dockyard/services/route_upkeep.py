"""Keeping the proxy on the live containers of every environment (after a start, an engine
restart, a container that died and came back elsewhere), and taking an environment or a whole
app off its target. A mixin of the Releaser (services/release.py): it shares its locks, route
ids and the releases it records."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from dockyard.domain.model import DEFAULT_ENVIRONMENT, Route, RunningService, ServiceSpec
from dockyard.domain.published_ports import PortRoute
from dockyard.planning import deploy as plan
from dockyard.planning.recovery import serving
from dockyard.ports import Orchestrator, Proxy, ReleaseStore


class RouteUpkeep:
    """Route ids and environment locks, shared with the Releaser, and the upkeep of routes. Uses
    the Releaser's store, orchestrator, proxy and route prefix, its locks' table, and the
    environments whose routes to check once their release ends (``_stale``)."""

    store: ReleaseStore
    orchestrator: Orchestrator
    proxy: Proxy
    route_prefix: str
    _stale: set[tuple[str, str]]
    _locks: dict[tuple[str, str], threading.Lock]
    _locks_guard: threading.Lock

    def route_id(self, app: str, service: str, environment: str = DEFAULT_ENVIRONMENT) -> str:
        """'.' is in no app, environment or service name, '--' in no app or environment name: no
        two routes collide. Production's ids are those routes had before environments."""
        scope = app if environment == DEFAULT_ENVIRONMENT else f"{app}--{environment}"
        return f"{self.route_prefix}-{scope}.{service}"

    def port_id(self, port: int) -> str:
        """The proxy's listener on a published host port: one app environment's at a time."""
        return f"{self.route_prefix}-port-{port}"

    def _owns(self, port: PortRoute, app: str, environment: str) -> bool:
        return port.owner.startswith(self.route_id(app, "", environment))

    def lock(self, app: str, environment: str = DEFAULT_ENVIRONMENT) -> threading.Lock:
        """Held while an environment's containers or routes change: a release, a restore of its
        routes, its removal."""
        with self._locks_guard:
            return self._locks.setdefault((app, environment), threading.Lock())

    def restore_routes(self, wait: bool = True) -> None:
        """Point the proxy at every environment's live containers (after a start, or when the
        engine's events may have been missed). The proxy's routes and the engine's containers
        are read once for all apps, not once per app."""
        current = {r.id: r for r in self.proxy.routes()}
        ports = {p.id: p for p in self.proxy.ports()}
        observed = self.orchestrator.observe()
        for app in self.store.list_apps():
            for env in self.store.environments(app.name):
                self._restore_locked(app.name, env.name, wait, current,
                                     [c for c in observed if c.app == app.name and c.environment == env.name], ports)

    def restore_app_routes(self, app: str, wait: bool = True) -> None:
        """Point the proxy at the live release's running containers of each of the app's
        environments; a route that is right already is left alone. With ``wait`` False, an
        environment in the middle of a release is not waited for: the release checks its routes
        when it ends."""
        for env in self.store.environments(app):
            self._restore_locked(app, env.name, wait)

    def _restore_locked(self, app: str, environment: str, wait: bool, current: dict[str, Route] | None = None,
                        observed: list[RunningService] | None = None,
                        ports: dict[str, PortRoute] | None = None) -> None:
        lock = self.lock(app, environment)
        if not lock.acquire(blocking=False):
            if not wait:
                self._stale.add((app, environment))
                return
            lock.acquire()
            current = observed = ports = None  # read before a release of the environment ended: read again
        try:
            self._stale.discard((app, environment))
            self._restore(app, environment, current, observed, ports)
        finally:
            lock.release()

    def _restore(self, app: str, environment: str, current: dict[str, Route] | None,
                 observed: list[RunningService] | None, ports: dict[str, PortRoute] | None = None) -> None:
        # A service kept unchanged by a release runs in a container of an earlier release:
        # the container that serves is the running one whose spec matches the live release's.
        live = self.store.live_release(app, environment)
        if live is None:
            return
        specs = {s.name: s for s in live.services if s.is_web}
        if current is None:
            current = {r.id: r for r in self.proxy.routes()}
        if observed is None:
            observed = [c for c in self.orchestrator.observe(app) if c.environment == environment]
        for spec in specs.values():
            upstreams = upstreams_of(serving(spec, [c for c in observed if c.upstream], live.id))
            route = Route(self.route_id(app, spec.name, environment), spec.hosts, upstreams)
            if upstreams and current.get(route.id) != route:
                self.proxy.set_route(route)
        self._restore_ports(app, environment, specs, [c for c in observed if c.release <= live.id and c.upstream],
                            ports)

    def _restore_ports(self, app: str, environment: str, specs: Mapping[str, ServiceSpec],
                       observed: list[RunningService], ports: dict[str, PortRoute] | None) -> None:
        """The proxy's published host ports of the live release, each to its serving container;
        one the environment no longer publishes is removed (when ``ports``, read for every
        environment at once, or the live release's own ports call for reading them)."""
        wanted = {host for s in specs.values() for host, *_ in s.proxied_ports}
        if ports is None and not wanted:
            return
        if ports is None:
            ports = {p.id: p for p in self.proxy.ports()}
        for spec in specs.values():
            upstreams = upstreams_of(serving(spec, observed))
            for host, target, _, ip in spec.proxied_ports if upstreams else ():
                port = PortRoute(self.port_id(host), host, at_port(upstreams, target),
                                 self.route_id(app, spec.name, environment), ip)
                if ports.get(port.id) != port:
                    self.proxy.set_port(port)
        for port in ports.values():
            if self._owns(port, app, environment) and port.port not in wanted:
                self.proxy.remove_port(port.id)

    def destroy(self, app: str, environment: str | None = None) -> None:
        """Take the app's environment (or all of them) off its target: routes, published host
        ports, containers, network. Volumes stay."""
        observed = self.orchestrator.observe(app)
        envs = ({environment} if environment is not None
                else {e.name for e in self.store.environments(app)} | {c.environment for c in observed})
        current = self.proxy.ports()
        for env in sorted(envs):
            with self.lock(app, env):
                served = [p.port for p in current if self._owns(p, app, env)]
                for action in plan.plan_removal(app, observed, env, served):
                    if isinstance(action, plan.RemovePort):
                        self.proxy.remove_port(self.port_id(action.port))
                    elif isinstance(action, plan.RemoveRoute):
                        self.proxy.remove_route(self.route_id(app, action.service, action.environment))
                    elif isinstance(action, plan.StopTasks):
                        self.orchestrator.stop(action.tasks)
                self.orchestrator.remove_network(app, env)


def upstreams_of(containers: Iterable[RunningService]) -> tuple[str, ...]:
    """The addresses the proxy dials for these containers, by replica index."""
    return tuple(c.upstream for c in sorted(containers, key=lambda c: c.replica) if c.upstream)


def at_port(upstreams: Iterable[str], port: int) -> tuple[str, ...]:
    return tuple(f"{u.rpartition(':')[0]}:{port}" for u in upstreams)
