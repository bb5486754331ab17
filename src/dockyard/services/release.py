"""Releasing services: start, wait, switch the proxy, stop the old containers, and undo a
release that fails before traffic moved. Also keeps routes (and the proxy's published host
ports) pointing at the live containers.

Published host ports (domain/published_ports.py) are checked before anything changes: a port
used twice, one of dockyard's own, one another app or environment publishes (their live
releases, and releases in progress), or one another program holds on the host is refused."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from dockyard.domain import hosts, replicas
from dockyard.domain import published_ports as pp
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
from dockyard.domain.published_ports import PortRoute
from dockyard.planning import deploy as plan
from dockyard.planning.recovery import serving
from dockyard.ports import Orchestrator, Proxy, ReleaseStore

Say = Callable[[str], None]
# The service as its container starts (app, environment, service → service): secret values
# resolved and their files in place (services/configuration.py). Its spec_hash is unchanged.
Prepare = Callable[[str, str, ServiceSpec], ServiceSpec]


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
    drain_timeout: float = 30.0  # how long old containers may take to finish their requests
    monitor_seconds: float = 5.0  # how long new containers must keep running after the switch (0: not watched)
    # dockyard's own host ports (port -> what): no app publishes them; None: from the settings
    reserved: Mapping[int, str] | None = None
    # (app, environment) -> its lock; the environments whose routes to check after their release
    _locks: dict[tuple[str, str], threading.Lock] = field(default_factory=dict, init=False, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stale: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)
    # the host ports ((port, transport)) of releases in progress, checked and claimed one at a time
    _claims: dict[tuple[str, str], set[tuple[int, str]]] = field(default_factory=dict, init=False, repr=False)
    _claims_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    # -- release --------------------------------------------------------------------------
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

    def release(
        self, app: App, environment: str, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None,
        say: Say, pinned: Callable[[], tuple[ServiceSpec, ...]] | None = None,
        config: Mapping[str, object] | None = None, artifact: Callable[[], tuple[ServiceSpec, ...]] | None = None,
        watch: bool = True,
    ) -> int:
        """Start, wait, switch, watch, drain, stop. ``pinned`` gives the services with their images'
        digests: it is awaited before traffic moves, and the release records what it returns.
        ``config``: the variable names and secret versions the services got, recorded with the
        release; ``artifact``: the commit's services pinned by digest before the environment's
        configuration, recorded apart (what a promotion releases elsewhere). ``watch`` False: no
        monitor window (a rollback returns to what served before)."""
        replicas.check(services)  # an image's VOLUME makes a service stateful: one container at a time
        try:
            with self.lock(app.name, environment), self._claim_ports(app.name, environment, services, say):
                return self._release(app, environment, commit, services, job_id, say, pinned, config, artifact,
                                     watch)
        finally:
            if (app.name, environment) in self._stale:  # a container changed under the release
                self._restore_locked(app.name, environment, True)

    def check_hosts(self, app: str, environment: str, services: tuple[ServiceSpec, ...]) -> None:
        """Refuse hosts another environment of the app routes already."""
        others: dict[str, list[str]] = {}
        for env in self.store.environments(app):
            live = self.store.live_release(app, env.name) if env.name != environment else None
            if live is not None:
                others[env.name] = list(live.hosts)
        clash = hosts.clashes((h for s in services for h in s.hosts), others)
        if clash:
            host, other = clash[0]
            raise Conflict(f"{host} answers for {app}'s environment {other} already",
                           "a service named like an environment takes that environment's host: rename the "
                           "service or the environment")

    def check_ports(self, app: str, environment: str, services: Sequence[ServiceSpec]) -> set[tuple[int, str]]:
        """Refuse (Conflict) host ports that clash (published_ports.refuse_conflicts) or that
        another program holds on the host; a port the environment's live release publishes
        already is its own. Returns the (port, transport) the release claims."""
        if not any(s.published for s in services):
            return set()
        live = self.store.live_release(app, environment)
        live_specs = list(live.services) if live is not None else []
        current = self.proxy.ports()
        others: dict[tuple[int, str], str] = {}
        for other in self.store.list_apps():
            for env in self.store.environments(other.name):
                found = self.store.live_release(other.name, env.name) if (other.name, env.name) != (app, environment) \
                    else None
                if found is not None:
                    others.update(pp.holders(other.name, env.name, found.services))
        for (a, e), claimed in self._claims.items():
            if (a, e) != (app, environment):
                others.update({key: f"app {a}'s environment {e} (its release is in progress)" for key in claimed})
        for port in current:
            if not self._owns(port, app, environment):
                others.setdefault((port.port, "tcp"), f"dockyard's proxy, for {port.owner or port.id}")
        reserved = {**(self.reserved or {}), self.proxy_port: "its proxy"}
        served = [p.port for p in current if self._owns(p, app, environment)]
        for service, (host, _, protocol, ip) in pp.refuse_conflicts(environment, services, live_specs, served,
                                                                     reserved, others):
            if not self.proxy.host_port_free(host, pp.transport(protocol), ip):
                named = f"{host}/{protocol}" if protocol in ("udp", "sctp") else str(host)
                raise Conflict(f"the host port {named} is taken on this host by another program: service "
                               f"{service.name} cannot publish it; {pp.remedy(environment, service.name, host)}",
                               f"see what holds it: ss -lntup 'sport = :{host}'")
        return {(h, pp.transport(p)) for s in services for h, _, p, _ in s.published}

    @contextlib.contextmanager
    def _claim_ports(self, app: str, environment: str, services: Sequence[ServiceSpec], say: Say) -> Iterator[None]:
        """Check the release's host ports and hold them until it ends: two releases in progress
        never take one port."""
        with self._claims_guard:
            try:
                claimed = self.check_ports(app, environment, services)
            except DockyardError:
                say(" !     Nothing was released; the previous release keeps serving.")
                raise
            self._claims[(app, environment)] = claimed
        try:
            yield
        finally:
            with self._claims_guard:
                self._claims.pop((app, environment), None)

    def _release(
        self, app: App, environment: str, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None,
        say: Say, pinned: Callable[[], tuple[ServiceSpec, ...]] | None, config: Mapping[str, object] | None = None,
        artifact: Callable[[], tuple[ServiceSpec, ...]] | None = None, watch: bool = True,
    ) -> int:
        self.check_hosts(app.name, environment, services)
        release_id = self.store.create_release(app.name, environment, commit, job_id)
        self.store.set_release(release_id, ReleaseStatus.PENDING, services)
        if config is not None:
            self.store.set_release_config(release_id, config)
        desired = Release(id=release_id, app=app.name, commit=commit, services=services, environment=environment)
        observed = [c for c in self.orchestrator.observe(app.name) if c.environment == environment]
        try:
            before_ports = {p.id: p for p in self.proxy.ports()}  # what a rollback puts back
        except DockyardError:
            before_ports = {}  # the proxy is down: setting a port fails below, restore_routes mends the rest
        served = [p.port for p in before_ports.values() if self._owns(p, app.name, environment)]
        actions = [a for a in plan.plan_release(desired, observed, served) if watch or not isinstance(a, plan.Monitor)]
        cleanup = [a for a in actions
                   if isinstance(a, plan.RemoveRoute | plan.RemovePort | plan.Drain | plan.StopContainer)]
        started: dict[str, RunningService] = {}  # container id -> the container
        switched: list[ServiceSpec] = []
        halted: list[RunningService] = []
        ported: list[PortRoute] = []

        def before_switch() -> None:
            if pinned is not None:
                self.store.set_release(release_id, ReleaseStatus.PENDING, pinned())
            if artifact is not None:
                self.store.set_release_artifact(release_id, artifact())

        try:
            self._apply(desired, [a for a in actions if a not in cleanup], started, switched, say, before_switch,
                        halted, ported)
        except Exception as exc:
            self._roll_back(app.name, environment, observed, started, switched, halted, ported, before_ports)
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
            for port in service.proxied_ports:
                say(f"       {pp.url(port, service.hosts[0] if service.hosts else 'localhost')}")
        # Traffic has moved: what is left is clean-up, and its failures do not undo the release.
        for action in cleanup:
            try:
                self._apply(desired, [action], started, switched, say, lambda: None)
            except DockyardError as exc:
                say(f" !     warning: {exc.message} (the release is live; dockyard retries at the next deploy)")
        return release_id

    def _roll_back(
        self, app: str, environment: str, observed: list[RunningService], started: dict[str, RunningService],
        switched: list[ServiceSpec], halted: list[RunningService], ported: Sequence[PortRoute] = (),
        before_ports: Mapping[str, PortRoute] | None = None,
    ) -> None:
        """Undo a release that failed midway: routes and published ports back to the old
        containers, new ones removed, halted ones (stateful services, ports Docker publishes)
        started again."""
        for port in ported:
            previous = (before_ports or {}).get(port.id)
            try:
                if previous is not None:
                    self.proxy.set_port(previous)
                else:
                    self.proxy.remove_port(port.id)
            except DockyardError:
                continue  # the proxy is down: restore_routes puts the live ports back when it returns
        for service in switched:
            old = _upstreams(c for c in observed if c.service == service.name and c.state == "running")
            try:
                route_id = self.route_id(app, service.name, environment)
                if old:
                    self.proxy.set_route(Route(route_id, service.hosts, old))
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
        halted: list[RunningService] | None = None, ported: list[PortRoute] | None = None,
    ) -> None:
        running: dict[str, dict[int, RunningService]] = {}  # service -> replica -> its container
        switching = False
        for action in actions:
            if not switching and isinstance(action, plan.RouteTraffic | plan.RoutePort):
                switching = True
                before_switch()
            match action:
                case plan.EnsureNetwork(app=app, environment=environment):
                    self.orchestrator.ensure_network(app, environment)
                case plan.KeepService(service=service, container=container):
                    running.setdefault(service.name, {})[container.replica] = container
                    say(f"-----> {_named(service, container.replica)}: unchanged, keeping {container.id[:12]}")
                case plan.StartService(service=service, replica=replica):
                    say(f"-----> Starting {_named(service, replica)} ({service.image.rsplit('/', 1)[-1][:60]})")
                    if service.direct_ports:
                        direct = ", ".join(f"{h}/{p}" for h, _, p, _ in service.direct_ports)
                        say(f"       {service.name}: Docker publishes its host port{'s' if ',' in direct else ''} "
                            f"{direct} (not the proxy): one container binds it at a time, so {service.name} is "
                            "released stop-first")
                    starting = service if self.prepare is None else self.prepare(release.app, release.environment,
                                                                                   service)
                    c = self.orchestrator.start(release.app, release.id, release.environment, starting, replica)
                    started[c.id] = running.setdefault(service.name, {})[replica] = c
                case plan.AwaitReady(service=service, replica=replica):
                    say(f"       waiting for {_named(service, replica)} to "
                        + ("complete" if service.one_shot else f"pass GET {service.http_check}" if service.http_check
                           else "answer" if service.is_web else "be ready"))
                    self.orchestrator.wait_ready(running[service.name][replica], self.ready_timeout, service.health)
                case plan.RouteTraffic(service=service):
                    upstreams = _upstreams(running.get(service.name, {}).values())
                    if not upstreams or len(upstreams) != len(running[service.name]):
                        raise DeployFailed(f"service {service.name} publishes no port")
                    route_id = self.route_id(release.app, service.name, release.environment)
                    self.proxy.set_route(Route(route_id, service.hosts, upstreams))
                    routed.append(service)
                case plan.Monitor(services=watched) if self.monitor_seconds > 0:
                    new = [c for c in started.values() if c.service in watched]
                    say(f"-----> Watching {len(new)} new container{'s' if len(new) > 1 else ''} for "
                        f"{self.monitor_seconds:g}s (a crash rolls the release back)")
                    checks = {s.name: s.health for s in release.services if s.name in watched and s.health}
                    self.orchestrator.monitor(new, self.monitor_seconds, checks)
                case plan.RoutePort(service=service, port=host, container=target, host_ip=ip):
                    upstreams = _upstreams(running.get(service.name, {}).values())
                    if not upstreams:
                        raise DeployFailed(f"service {service.name} has no address the proxy can dial")
                    port = PortRoute(self.port_id(host), host, _at_port(upstreams, target),
                                     self.route_id(release.app, service.name, release.environment), ip)
                    if ported is not None:
                        ported.append(port)  # before: a change the proxy made but did not confirm is undone too
                    self.proxy.set_port(port)
                case plan.RemoveRoute(service=name, environment=environment):
                    self.proxy.remove_route(self.route_id(release.app, name, environment))
                case plan.RemovePort(port=host):
                    self.proxy.remove_port(self.port_id(host))
                case plan.Drain(containers=containers):
                    begun = time.monotonic()
                    left = self.orchestrator.drain(containers, self.drain_timeout)
                    many = "s" if len(containers) > 1 else ""
                    if left:
                        say(f" !     {len(containers)} old container{many}: {left} connection{'s' if left > 1 else ''} "
                            f"still open after {self.drain_timeout:.0f}s, stopping anyway (DOCKYARD_DRAIN_TIMEOUT)")
                    else:
                        say(f"-----> {len(containers)} old container{many} drained in "
                            f"{time.monotonic() - begun:.2f}s")
                case plan.StopContainer(container=container):
                    say(f"-----> Stopping {container.service} of release {container.release}")
                    self.orchestrator.stop(container)
                case plan.HaltContainer(container=container, ports=direct):
                    why = (f"Docker binds its host ports ({', '.join(direct)}), which one container holds at a time"
                           if direct else "it keeps data in a volume, which one container uses at a time")
                    say(f"-----> Stopping {container.service} of release {container.release} first: {why}")
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
            upstreams = _upstreams(serving(spec, [c for c in observed if c.upstream], live.id))
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
            upstreams = _upstreams(serving(spec, observed))
            for host, target, _, ip in spec.proxied_ports if upstreams else ():
                port = PortRoute(self.port_id(host), host, _at_port(upstreams, target),
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
                    elif isinstance(action, plan.StopContainer):
                        self.orchestrator.stop(action.container)
                self.orchestrator.remove_network(app, env)


def _named(service: ServiceSpec, replica: int) -> str:
    """How a release names one container of a service: its name, with its replica when it runs several."""
    return service.name if service.replicas <= 1 and replica == 0 else f"{service.name} #{replica}"


def _upstreams(containers: Iterable[RunningService]) -> tuple[str, ...]:
    """The addresses the proxy dials for these containers, by replica index."""
    return tuple(c.upstream for c in sorted(containers, key=lambda c: c.replica) if c.upstream)


def _at_port(upstreams: Iterable[str], port: int) -> tuple[str, ...]:
    return tuple(f"{u.rpartition(':')[0]}:{port}" for u in upstreams)
