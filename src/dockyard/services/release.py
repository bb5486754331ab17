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
from dockyard.ports import Orchestrator, Proxy, ReleaseStore
from dockyard.services.release_control import Controls, ReleaseControl
from dockyard.services.route_upkeep import RouteUpkeep, at_port, upstreams_of

Say = Callable[[str], None]
# The service as its container starts (app, environment, service → service): secret values
# resolved and their files in place (services/configuration.py). Its spec_hash is unchanged.
Prepare = Callable[[str, str, ServiceSpec], ServiceSpec]


@dataclass
class Releaser(RouteUpkeep):
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
    progress_deadline: float = 900.0  # seconds a release may take, pauses aside
    controls: Controls = field(default_factory=Controls)  # the releases running now: abort, pause, resume
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
    def release(
        self, app: App, environment: str, commit: str, services: tuple[ServiceSpec, ...], job_id: int | None,
        say: Say, pinned: Callable[[], tuple[ServiceSpec, ...]] | None = None,
        config: Mapping[str, object] | None = None, artifact: Callable[[], tuple[ServiceSpec, ...]] | None = None,
        watch: bool = True, force: bool = False, timeline: Mapping[str, object] | None = None,
    ) -> int:
        """Start, wait, switch, watch, drain, stop. ``pinned`` gives the services with their images'
        digests: it is awaited before traffic moves, and the release records what it returns.
        ``config``: the variable names and secret versions the services got, recorded with the
        release; ``artifact``: the commit's services pinned by digest before the environment's
        configuration, recorded apart (what a promotion releases elsewhere). ``watch`` False: no
        monitor window (a rollback returns to what served before). A release of what failed last
        time (same commit, same services) is refused unless ``force``: nothing changed since."""
        replicas.check(services)  # an image's VOLUME makes a service stateful: one container at a time
        try:
            with self.lock(app.name, environment), self._claim_ports(app.name, environment, services, say):
                if not force:
                    self._refuse_repeat(app.name, environment, commit, services)
                return self._release(app, environment, commit, services, job_id, say, pinned, config, artifact,
                                     watch, timeline)
        finally:
            if (app.name, environment) in self._stale:  # a container changed under the release
                self._restore_locked(app.name, environment, True)

    def act(self, app: str, environment: str, action: str, who: str) -> dict[str, object]:
        """``abort``, ``pause`` or ``resume`` the release running in the environment. An abort
        before the switch stops the new containers at once (a wait on one ends there)."""
        control = self.controls.get(app, environment)
        if action == "abort":
            control.set(abort=who)
            if not control.switched and control.started:  # stopped (the release removes them as it rolls back)
                with contextlib.suppress(DockyardError):
                    self.orchestrator.halt(list(control.started.values()))
        elif action == "pause":
            control.set(pause=who)
        elif action == "resume":
            control.set(resume=True)
        else:
            raise DockyardError(f"unknown action {action!r}", "abort, pause or resume")
        return {"release": control.release, "state": control.state}

    def _refuse_repeat(self, app: str, environment: str, commit: str, services: tuple[ServiceSpec, ...]) -> None:
        """A failed release is remembered: the same commit with the same services is not released
        again until something changes (an interrupted one is no failure of its own)."""
        found = self.store.list_releases(app, 1, environment)
        last = found[0] if found else None
        if last is None or last.status != ReleaseStatus.FAILED or last.commit != commit:
            return
        if last.error and last.error.startswith(INTERRUPTED_PREFIX):
            return
        if release_content(last.services) != release_content(services):
            return
        reason = (last.error or "").split("\n", 1)[0][:300]
        raise DeployFailed(f"release {last.id} of this commit, with these same services, failed: {reason}. Nothing "
                           "changed since, so it is not tried again",
                           f"change something (a commit, a variable, a secret), or deploy again with --force: "
                           f"dockyard deploy {app} --env {environment} --force")

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
        timeline: Mapping[str, object] | None = None,
    ) -> int:
        self.check_hosts(app.name, environment, services)
        release_id = self.store.create_release(app.name, environment, commit, job_id)
        self.store.set_release(release_id, ReleaseStatus.PENDING, services)
        if timeline:
            self.store.set_release_timeline(release_id, timeline)
        if config is not None:
            self.store.set_release_config(release_id, config)
        desired = Release(id=release_id, app=app.name, commit=commit, services=services, environment=environment)
        control = ReleaseControl(release_id, self.progress_deadline)
        self.controls.register(app.name, environment, control)
        try:
            return self._run(app, environment, desired, control, say, pinned, artifact, watch)
        finally:
            self.controls.unregister(app.name, environment, control)

    def _run(self, app: App, environment: str, desired: Release, control: ReleaseControl, say: Say,
             pinned: Callable[[], tuple[ServiceSpec, ...]] | None,
             artifact: Callable[[], tuple[ServiceSpec, ...]] | None, watch: bool) -> int:
        release_id = desired.id
        observed = [c for c in self.orchestrator.observe(app.name) if c.environment == environment]
        try:
            before_ports = {p.id: p for p in self.proxy.ports()}  # what a rollback puts back
        except DockyardError:
            before_ports = {}  # the proxy is down: setting a port fails below, restore_routes mends the rest
        served = [p.port for p in before_ports.values() if self._owns(p, app.name, environment)]
        actions = [a for a in plan.plan_release(desired, observed, served) if watch or not isinstance(a, plan.Monitor)]
        cleanup = [a for a in actions  # (a drain between two batches is part of the release)
                   if isinstance(a, plan.RemoveRoute | plan.RemovePort | plan.StopTasks)
                   or (isinstance(a, plan.Drain) and not a.batch)]
        started = control.started  # container id -> the container
        switched: list[ServiceSpec] = []
        halted: list[RunningService] = []
        ported: list[PortRoute] = []

        def before_switch() -> None:
            control.switched = True
            if pinned is not None:
                self.store.set_release(release_id, ReleaseStatus.PENDING, pinned())
            if artifact is not None:
                self.store.set_release_artifact(release_id, artifact())

        try:
            self._apply(desired, [a for a in actions if a not in cleanup], started, switched, say, before_switch,
                        halted, ported, control)
        except Exception as exc:
            self._roll_back(app.name, environment, observed, started, switched, halted, ported, before_ports)
            message = exc.message if isinstance(exc, DockyardError) else f"internal error: {exc!r}"
            if control.aborted_by:  # whatever the step said when its container went
                message = f"release {release_id} was aborted by {control.aborted_by}"
            self.store.set_release(release_id, ReleaseStatus.FAILED, error=message)
            say(" !     Release failed; the previous release keeps serving.")
            if control.aborted_by and not (isinstance(exc, DockyardError) and exc.message == message):
                raise DeployFailed(message) from exc
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
            old = upstreams_of(c for c in observed if c.service == service.name and c.state == "running")
            try:
                route_id = self.route_id(app, service.name, environment)
                if old:
                    self.proxy.set_route(Route(route_id, service.hosts, old))
                else:
                    self.proxy.remove_route(route_id)
            except DockyardError:
                continue  # the proxy is down: restore_routes puts the live routes back when it returns
        if started:
            with contextlib.suppress(DockyardError):  # labelled: the next deploy's plan stops what is left
                self.orchestrator.stop(list(started.values()))
        if halted:  # after the new ones are gone: their volume is free again
            self._stale.add((app, environment))  # they may come back under other addresses: routes are checked
            with contextlib.suppress(DockyardError):
                self.orchestrator.resume(halted)

    def _apply(
        self, release: Release, actions: list[plan.Action], started: dict[str, RunningService],
        routed: list[ServiceSpec], say: Say, before_switch: Callable[[], None],
        halted: list[RunningService] | None = None, ported: list[PortRoute] | None = None,
        control: ReleaseControl | None = None,
    ) -> None:
        running: dict[str, dict[int, RunningService]] = {}  # service -> replica -> its container
        switching = False
        ready_at: float | None = None  # when the last new container was found ready
        for action in actions:
            if control is not None:
                control.checkpoint(say)
            if not switching and isinstance(action, plan.RouteTraffic | plan.RoutePort):
                switching = True
                before_switch()
            match action:
                case plan.EnsureNetwork(app=app, environment=environment):
                    self.orchestrator.ensure_network(app, environment)
                case plan.KeepService(service=service, tasks=tasks):
                    running.setdefault(service.name, {}).update((t.replica, t) for t in tasks)
                    say(f"-----> {_named(service, [t.replica for t in tasks])}: unchanged, keeping "
                        + ", ".join(t.id[:12] for t in tasks))
                case plan.StartService(service=service, replicas=indexes):
                    say(f"-----> Starting {_named(service, indexes)} ({service.image.rsplit('/', 1)[-1][:60]})")
                    if service.direct_ports:
                        direct = ", ".join(f"{h}/{p}" for h, _, p, _ in service.direct_ports)
                        say(f"       {service.name}: Docker publishes its host port{'s' if ',' in direct else ''} "
                            f"{direct} (not the proxy): one container binds it at a time, so {service.name} is "
                            "released stop-first")
                    starting = service if self.prepare is None else self.prepare(release.app, release.environment,
                                                                                   service)
                    for task in self.orchestrator.start(release.app, release.id, release.environment, starting,
                                                        indexes):
                        started[task.id] = running.setdefault(service.name, {})[task.replica] = task
                case plan.AwaitReady(service=service, replicas=indexes):
                    say(f"       waiting for {_named(service, indexes)} to "
                        + ("complete" if service.one_shot else f"pass GET {service.http_check}" if service.http_check
                           else "answer" if service.is_web
                           else f"accept connections on port {service.ready_port}" if service.ready_port
                           else "be ready"))
                    timeout = control.remaining(self.ready_timeout) if control is not None else self.ready_timeout
                    self.orchestrator.wait_ready([running[service.name][i] for i in indexes], timeout,
                                                 service.health)
                    ready_at = time.monotonic()
                case plan.RouteTraffic(service=service, also=also):
                    upstreams = upstreams_of(running.get(service.name, {}).values())
                    if not upstreams or len(upstreams) != len(running[service.name]):
                        raise DeployFailed(f"service {service.name} publishes no port")
                    if also:
                        say(f"       {service.name}: the route carries {len(upstreams)} new and {len(also)} old "
                            f"container{'s' if len(also) > 1 else ''}")
                        upstreams += upstreams_of(also)
                    route_id = self.route_id(release.app, service.name, release.environment)
                    self.proxy.set_route(Route(route_id, service.hosts, upstreams))
                    routed.append(service)
                    if ready_at is not None:  # the reaction time: from the last container ready to the proxy on it
                        say(f"       {service.name}: serving through the proxy "
                            f"{time.monotonic() - ready_at:.3f}s after it was ready")
                case plan.Monitor(services=watched) if self.monitor_seconds > 0:
                    new = [c for c in started.values() if c.service in watched]
                    say(f"-----> Watching {len(new)} new container{'s' if len(new) > 1 else ''} for "
                        f"{self.monitor_seconds:g}s (a crash rolls the release back)")
                    checks = {s.name: s.health for s in release.services if s.name in watched and s.health}
                    self.orchestrator.monitor(new, self.monitor_seconds, checks)
                case plan.RoutePort(service=service, port=host, container=target, host_ip=ip):
                    upstreams = upstreams_of(running.get(service.name, {}).values())
                    if not upstreams:
                        raise DeployFailed(f"service {service.name} has no address the proxy can dial")
                    port = PortRoute(self.port_id(host), host, at_port(upstreams, target),
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
                    many = "s" if len(containers) > 1 else ""
                    say(f"-----> Draining {len(containers)} old container{many}: the requests they answer finish "
                        f"(up to {self.drain_timeout:.0f}s)")
                    left = self.orchestrator.drain(containers, self.drain_timeout)
                    if left:
                        say(f" !     {len(containers)} old container{many}: {left} connection{'s' if left > 1 else ''} "
                            f"still open after {self.drain_timeout:.0f}s, stopping anyway (DOCKYARD_DRAIN_TIMEOUT)")
                    else:
                        say(f"-----> {len(containers)} old container{many} drained in "
                            f"{time.monotonic() - begun:.2f}s")
                case plan.StopTasks(service=name, tasks=tasks):
                    say(f"-----> Stopping {_old(name, tasks)}")
                    self.orchestrator.stop(tasks)
                case plan.HaltTasks(service=name, tasks=tasks, ports=direct, batch=batch):
                    spec = next((s for s in release.services if s.name == name), None)
                    why = (f"Docker binds its host ports ({', '.join(direct)}), which one container holds at a time"
                           if direct else f"replaced in batch {batch} (kept until the release is live)"
                           if batch and spec is not None and not spec.stop_first
                           else "it keeps data in a volume, which one container uses at a time"
                           if spec is None or spec.stateful else "it is released stop-first (declared stateful, or "
                           "deploy.update_config.order)")
                    say(f"-----> Stopping {_old(name, tasks, spec)}"
                        f"{' first' if not batch or spec is None or spec.stop_first else ''}: {why}")
                    if halted is not None:
                        halted.extend(tasks)  # before: one the orchestrator stopped and then failed on is started again
                    self.orchestrator.halt(tasks)
        if not switching:
            before_switch()

def _named(service: ServiceSpec, replicas: Sequence[int]) -> str:
    """How a release names tasks of a service: its name, with their replicas when it runs several."""
    if service.replicas <= 1 and list(replicas) == [0]:
        return service.name
    return f"{service.name} " + ", ".join(f"#{i}" for i in replicas)


def _old(name: str, tasks: Sequence[RunningService], spec: ServiceSpec | None = None) -> str:
    """Old tasks of a service, with the releases they belong to: "web #0, #1 of release 4"."""
    several = len(tasks) > 1 or any(t.replica for t in tasks) or (spec is not None and spec.replicas > 1)
    which = (" " + ", ".join(f"#{t.replica}" for t in tasks)) if several else ""
    releases = sorted({t.release for t in tasks})
    return f"{name}{which} of release{'s' if len(releases) > 1 else ''} {', '.join(map(str, releases))}"


INTERRUPTED_PREFIX = "interrupted:"  # the error of a release dockyard stopped in the middle of (services/recovery.py)


def release_content(services: Iterable[ServiceSpec]) -> set[tuple[str, str, int, tuple[str, ...]]]:
    """What a release runs, to tell two releases apart: each service's spec, replicas and hosts."""
    return {(s.name, s.spec_hash, s.replicas, s.hosts) for s in services}
