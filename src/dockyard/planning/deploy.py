"""Planning a release: a pure function from desired and observed state to ordered actions.

Every action names a service and a set of its tasks, never one container's steps: "start these
replicas of web", "await them", "route web to its tasks", "drain, halt or stop these old tasks".
The orchestrator behind the port (ports.Orchestrator) decides how: on one Docker host a task is a
container (adapters/docker_orchestrator.py); on a Swarm cluster a release's service is one Swarm
service with N tasks, whose readiness is its tasks' state. ARCHITECTURE.md has the table.

The order is what makes a release safe: every new container starts and answers before any
traffic moves, and old containers stop only after the proxy points at the new ones. If anything
before the switch fails, the applier removes what it started and the old release keeps serving.
Stateful services (a named volume) are the exception: start-first would put two containers on
one volume, so their old container is halted first and started again if the release fails. So
are services declared stop-first (``ServiceSpec.stop_first``: compose's
``deploy.update_config.order``, dockyard.yml's ``stateful``), and services whose host ports Docker publishes (domain/published_ports.py): one container binds a
host port at a time. Host ports the proxy serves switch with the host routes (``RoutePort``).

Replicas (``ServiceSpec.replicas``, domain/replicas.py): up to N running containers whose spec
matches are kept (lowest replica index first), the missing ones start with free indexes and are
awaited, then the route carries every one of the N; the old and the extra containers stop last,
once the new ones have kept running through the monitor window (``Monitor``: else the release
rolls back to the old ones, still there) and the old ones have drained (``Drain``: the requests
they were answering when the proxy moved finish).
Scaling changes no spec: 2 → 3 keeps two and starts one, 3 → 2 stops one after the switch. A
service with 0 replicas runs nothing and is not routed.

Batches (``ServiceSpec.parallelism``, compose ``deploy.update_config.parallelism``): a service
whose new replicas outnumber its parallelism is replaced that many at a time (``_roll``), the
route carrying each batch's new containers with the old ones not replaced yet; the old ones of
a batch drain and are halted (kept), so that a failure in a later batch starts them again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace

from dockyard.domain.model import DEFAULT_ENVIRONMENT, Release, RunningService, ServiceSpec


@dataclass(frozen=True)
class EnsureNetwork:
    app: str
    environment: str


@dataclass(frozen=True)
class StartService:
    """Start the service's tasks for these ``replicas`` (one task each), all or none: on one host a
    container per replica; on a Swarm cluster the release's service with that many tasks.
    ``batch``: in a release in batches, the batch they belong to (1, 2, ...)."""

    service: ServiceSpec
    replicas: tuple[int, ...] = (0,)
    batch: int = 0


@dataclass(frozen=True)
class AwaitReady:
    """The tasks started for these ``replicas`` are ready: healthy, answering, or completed, as
    their state tells (a container's, a Swarm task's)."""

    service: ServiceSpec
    replicas: tuple[int, ...] = (0,)


@dataclass(frozen=True)
class KeepService:
    """Unchanged and running: its tasks are reused as they are, their route refreshed."""

    service: ServiceSpec
    tasks: tuple[RunningService, ...]


@dataclass(frozen=True)
class RouteTraffic:
    """The service's hosts go to every replica it runs (kept and started), and to ``also``: the
    old containers a release in batches has not replaced yet."""

    service: ServiceSpec
    also: tuple[RunningService, ...] = ()


@dataclass(frozen=True)
class RoutePort:
    """The proxy's listener on a published host port sends its traffic to the service's container
    (``container`` port): switched with the host routes, after every new container answers."""

    service: ServiceSpec
    port: int
    container: int
    host_ip: str = ""


@dataclass(frozen=True)
class Monitor:
    """After the switch, before the old containers go: the new containers of ``services`` must keep
    running (and healthy) for the monitor window, or the release is rolled back to the old ones."""

    services: tuple[str, ...]


@dataclass(frozen=True)
class RemoveRoute:
    service: str
    environment: str = DEFAULT_ENVIRONMENT


@dataclass(frozen=True)
class RemovePort:
    """The proxy stops listening on a host port the environment no longer publishes through it."""

    port: int


@dataclass(frozen=True)
class Drain:
    """After the switch, before they stop: the old containers the proxy sent traffic to finish
    the requests they are answering (no open connection on their port, or the drain timeout).
    ``batch``: in a release in batches, the old containers of that batch (1, 2, ...), drained
    before the next batch starts; 0: once the release is live."""

    containers: tuple[RunningService, ...]
    batch: int = 0


@dataclass(frozen=True)
class StopTasks:
    """Stop and remove a service's old tasks (its ``service``'s, of earlier releases)."""

    service: str
    tasks: tuple[RunningService, ...]


@dataclass(frozen=True)
class HaltTasks:
    """Stop a service's old tasks, keeping them: a stateful service's, before its new ones start on
    the same volume, or those on the host ports Docker publishes (``ports``, as ``5353/udp``).
    Started again if the release fails; removed once it succeeds."""

    service: str
    tasks: tuple[RunningService, ...]
    ports: tuple[str, ...] = ()
    batch: int = 0  # a release in batches: the batch that replaces them (1, 2, ...)


Action = (EnsureNetwork | StartService | AwaitReady | KeepService | RouteTraffic | RoutePort | Monitor | RemoveRoute
          | RemovePort | Drain | StopTasks | HaltTasks)


def plan_release(release: Release, observed: Sequence[RunningService], served: Collection[int] = ()) -> list[Action]:
    """Actions that take the observed containers of ``release.app`` to ``release``. ``served``:
    the host ports the proxy serves for the release's environment now."""
    mine = [c for c in observed if c.app == release.app and c.environment == release.environment]
    actions: list[Action] = [EnsureNetwork(release.app, release.environment)]
    keep = {s.name: _kept(s, mine) for s in release.services}
    new = {s.name: _free(keep[s.name], s.replicas) for s in release.services}
    starts = [s for s in release.services if new[s.name]]
    actions += [KeepService(s, tuple(keep[s.name])) for s in release.services if keep[s.name]]
    kept_ids = {c.id for kept in keep.values() for c in kept}
    replaced = {s.name: [c for c in mine if c.service == s.name and c.id not in kept_ids and c.state == "running"]
                for s in starts}
    rolling = {s.name: _batches(s, new[s.name], sorted(replaced[s.name], key=lambda c: c.replica))
               for s in starts if _rolls(s, new[s.name], replaced[s.name])}
    # Stateful services, and those whose host ports Docker publishes, are stop-first: their old
    # containers stop before the new ones start (of a service released in batches: its first batch's).
    stop_first = {s.name: tuple(_direct(p) for p in s.direct_ports) for s in starts
                  if s.stateful or s.stop_first or s.direct_ports}
    first_halts = {c.id for name, batches in rolling.items() if name in stop_first for c in batches[0][1]}
    halting = [c for c in mine if c.service in stop_first and c.state == "running" and c.id not in kept_ids
               and (c.service not in rolling or c.id in first_halts)]
    actions += [HaltTasks(name, tasks, stop_first[name], 1 if name in rolling else 0)
                for name, tasks in _by_service(halting)]
    first = {name: (list(rolling[name][0][0]) if name in rolling else indexes) for name, indexes in new.items()}
    actions += [replace(a, batch=1) if isinstance(a, StartService) and a.service.name in rolling else a
                for a in _starts_in_order(release.services, first, keep)]  # a release in batches: its first
    routed = [s for s in release.services if s.is_web and s.replicas > 0]
    batched: set[str] = set()  # the old containers batches drained and halted
    for s in release.services:
        if s.name in rolling:
            actions += _roll(s, rolling[s.name], s.name in stop_first, s in routed)
            batched |= {c.id for _, olds in rolling[s.name] for c in olds}
    for s in routed:
        actions.append(RouteTraffic(s))
        actions += [RoutePort(s, host, container, ip) for host, container, _, ip in s.proxied_ports]
    watched = tuple(s.name for s in starts if not s.one_shot)
    if watched:
        actions.append(Monitor(watched))
    old_web = {c.service for c in mine} - {s.name for s in routed}
    actions += [RemoveRoute(name, release.environment) for name in sorted(old_web)]
    proxied = {host for s in routed for host, *_ in s.proxied_ports}
    actions += [RemovePort(port) for port in sorted(set(served) - proxied)]
    leaving = [c for c in mine if c.id not in kept_ids]
    draining = tuple(c for c in leaving if c.state == "running" and c.upstream is not None
                     and c.service not in stop_first and c.id not in batched)  # a halted one has no request left
    if draining:
        actions.append(Drain(draining))
    actions += [StopTasks(name, tasks) for name, tasks in _by_service(leaving)]
    return actions


def _by_service(tasks: Sequence[RunningService]) -> list[tuple[str, tuple[RunningService, ...]]]:
    """The tasks grouped by service (of one environment), in the order their services first appear."""
    grouped: dict[tuple[str, str], list[RunningService]] = {}
    for t in tasks:
        grouped.setdefault((t.environment, t.service), []).append(t)
    return [(name, tuple(group)) for (_, name), group in grouped.items()]


Batch = tuple[tuple[int, ...], tuple[RunningService, ...]]  # (new replica indexes, old containers they replace)


def _rolls(service: ServiceSpec, new: Sequence[int], replaced: Sequence[RunningService]) -> bool:
    """Released in batches: a parallelism below the count of new replicas, old ones to replace,
    and neither a volume, a host port Docker publishes nor a run-once service."""
    return (0 < service.parallelism < len(new) and bool(replaced) and not service.stateful
            and not service.direct_ports and not service.one_shot)


def _batches(service: ServiceSpec, new: Sequence[int], replaced: Sequence[RunningService]) -> list[Batch]:
    """``parallelism`` new replicas at a time, each batch with the old containers it replaces
    (the last batch takes the old ones left: a release that also scales down)."""
    size = service.parallelism
    count = -(-len(new) // size)
    return [(tuple(new[k * size:(k + 1) * size]),
             tuple(replaced[k * size:(k + 1) * size] if k < count - 1 else replaced[k * size:]))
            for k in range(count)]


def _roll(service: ServiceSpec, batches: Sequence[Batch], stop_first: bool, routed: bool) -> list[Action]:
    """The batches of a service released in batches (the first batch's containers started and
    awaited already). Start-first: the route carries a batch's new containers, and the old ones
    not replaced yet, then the batch's old ones drain and halt. Stop-first: a batch's old ones
    halt before its new ones start. Halted containers are removed once the release is live, and
    started again if it fails."""
    actions: list[Action] = []
    for number, (indexes, olds) in enumerate(batches, start=1):
        if number > 1:
            if stop_first and olds:
                actions.append(HaltTasks(service.name, olds, (), number))
            actions += [StartService(service, indexes, number), AwaitReady(service, indexes)]
        left = tuple(c for _, later in batches[number:] for c in later)
        if routed:
            actions.append(RouteTraffic(service, left))
        if not stop_first:
            if routed and any(c.upstream is not None for c in olds):
                actions.append(Drain(tuple(c for c in olds if c.upstream is not None), number))
            if olds:
                actions.append(HaltTasks(service.name, olds, (), number))
    return actions


def _direct(port: tuple[int, int, str, str]) -> str:
    return f"{port[0]}/{port[2]}"


def _kept(service: ServiceSpec, mine: Sequence[RunningService]) -> list[RunningService]:
    """Up to ``service.replicas`` reusable containers whose spec matches, one per replica index,
    lowest index first."""
    by_replica: dict[int, RunningService] = {}
    for c in mine:
        if c.service == service.name and c.spec_hash == service.spec_hash and _reusable(service, c):
            by_replica.setdefault(c.replica, c)
    return [by_replica[i] for i in sorted(by_replica)][:max(service.replicas, 0)]


def _free(kept: Sequence[RunningService], replicas: int) -> list[int]:
    """The replica indexes the missing containers take: the lowest ones no kept container has."""
    used = {c.replica for c in kept}
    free = (i for i in range(replicas + len(used)) if i not in used)
    return [next(free) for _ in range(replicas - len(kept))]


def _reusable(service: ServiceSpec, c: RunningService) -> bool:
    """Running; or, for a one-shot service, running still or done (exited 0): never run again."""
    if service.one_shot:
        return c.state == "running" or (c.state == "exited" and c.exit_code == 0)
    return c.state == "running"


def _starts_in_order(services: Sequence[ServiceSpec], new: Mapping[str, Sequence[int]],
                     keep: Mapping[str, Sequence[RunningService]]) -> list[Action]:
    """StartService and AwaitReady in waves: all that can start, then the waits that the next
    wave needs (a dependency with service_healthy must be ready first, one with
    service_completed_successfully must have exited 0), and so on; then every other wait. Without
    such conditions: all starts, then all waits. ``services`` are in start order (dependencies
    first); a kept one-shot service that still runs is waited for too. Each replica a service
    starts (``new``: their indexes) is started and awaited."""
    starting = {name for name, indexes in new.items() if indexes}
    pending = [s for s in services if s.name in starting]
    waiting = [s for s in services if s.name in starting
               or (s.one_shot and any(c.state == "running" for c in keep.get(s.name, ())))]

    def starts(batch: Sequence[ServiceSpec]) -> list[Action]:
        return [StartService(s, tuple(new[s.name])) for s in batch if new.get(s.name)]

    def waits(batch: Sequence[ServiceSpec]) -> list[Action]:
        out: list[Action] = []
        for s in batch:
            indexes = new.get(s.name) or [c.replica for c in keep.get(s.name, ()) if c.state == "running"]
            if indexes:
                out.append(AwaitReady(s, tuple(indexes)))
        return out

    actions: list[Action] = []
    while pending:
        unready = {s.name for s in waiting}
        blocked: set[str] = set()
        for s in pending:
            if any(d in unready for d in (*s.after_healthy, *s.after_completed)) or any(d in blocked for d in s.depends_on):
                blocked.add(s.name)
        actions += starts([s for s in pending if s.name not in blocked])
        pending = [s for s in pending if s.name in blocked]
        needed = {d for s in pending for d in (*s.after_healthy, *s.after_completed)} - blocked
        ready = [s for s in waiting if s.name in needed]
        if pending and not ready:  # cannot happen with dependencies in start order: start the rest
            actions += starts(pending)
            pending = []
        actions += waits(ready)
        waiting = [s for s in waiting if s.name not in needed]
    return actions + waits(waiting)


def plan_removal(app: str, observed: Sequence[RunningService], environment: str | None = None,
                 served: Collection[int] = ()) -> list[Action]:
    """Actions that take an app (or one of its environments) off its target: routes and the host
    ports the proxy serves for it (``served``) first, then containers."""
    mine = [c for c in observed if c.app == app and (environment is None or c.environment == environment)]
    actions: list[Action] = [RemovePort(port) for port in sorted(served)]
    actions += [RemoveRoute(name, env) for env, name in sorted({(c.environment, c.service) for c in mine})]
    actions += [StopTasks(name, tasks) for name, tasks in _by_service(mine)]
    return actions
