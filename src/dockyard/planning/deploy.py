"""Planning a release: a pure function from desired and observed state to ordered actions.

The order is what makes a release safe: every new container starts and answers before any
traffic moves, and old containers stop only after the proxy points at the new ones. If anything
before the switch fails, the applier removes what it started and the old release keeps serving.
Stateful services (a named volume) are the exception: start-first would put two containers on
one volume, so their old container is halted first and started again if the release fails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockyard.domain.model import DEFAULT_ENVIRONMENT, Release, RunningService, ServiceSpec


@dataclass(frozen=True)
class EnsureNetwork:
    app: str
    environment: str


@dataclass(frozen=True)
class StartService:
    service: ServiceSpec


@dataclass(frozen=True)
class AwaitReady:
    service: ServiceSpec


@dataclass(frozen=True)
class KeepService:
    """Unchanged and running: reuse the container, refresh its route."""

    service: ServiceSpec
    container: RunningService


@dataclass(frozen=True)
class RouteTraffic:
    service: ServiceSpec


@dataclass(frozen=True)
class RemoveRoute:
    service: str
    environment: str = DEFAULT_ENVIRONMENT


@dataclass(frozen=True)
class StopContainer:
    container: RunningService


@dataclass(frozen=True)
class HaltContainer:
    """Stop, keeping the container: a stateful service's old container, before its new one starts
    on the same volume. Started again if the release fails; removed once it succeeds."""

    container: RunningService


Action = (EnsureNetwork | StartService | AwaitReady | KeepService | RouteTraffic | RemoveRoute | StopContainer
          | HaltContainer)


def plan_release(release: Release, observed: Sequence[RunningService]) -> list[Action]:
    """Actions that take the observed containers of ``release.app`` to ``release``."""
    mine = [c for c in observed if c.app == release.app and c.environment == release.environment]
    actions: list[Action] = [EnsureNetwork(release.app, release.environment)]
    keep: dict[str, RunningService] = {}
    for service in release.services:
        for c in mine:
            if c.service == service.name and c.spec_hash == service.spec_hash and _reusable(service, c):
                keep.setdefault(service.name, c)
    starts = [s for s in release.services if s.name not in keep]
    actions += [KeepService(s, keep[s.name]) for s in release.services if s.name in keep]
    # Stateful services are stop-first: their old containers stop before the new ones start.
    stateful = {s.name for s in starts if s.stateful}
    actions += [HaltContainer(c) for c in mine if c.service in stateful and c.state == "running"]
    actions += _starts_in_order(release.services, starts, keep)
    actions += [RouteTraffic(s) for s in release.services if s.is_web]
    desired_web = {s.name for s in release.services if s.is_web}
    old_web = {c.service for c in mine} - desired_web
    actions += [RemoveRoute(name, release.environment) for name in sorted(old_web)]
    kept_ids = {c.id for c in keep.values()}
    actions += [StopContainer(c) for c in mine if c.id not in kept_ids]
    return actions


def _reusable(service: ServiceSpec, c: RunningService) -> bool:
    """Running; or, for a one-shot service, running still or done (exited 0): never run again."""
    if service.one_shot:
        return c.state == "running" or (c.state == "exited" and c.exit_code == 0)
    return c.state == "running"


def _starts_in_order(services: Sequence[ServiceSpec], starts: Sequence[ServiceSpec],
                     keep: Mapping[str, RunningService]) -> list[Action]:
    """StartService and AwaitReady in waves: all that can start, then the waits that the next
    wave needs (a dependency with service_healthy must be ready first, one with
    service_completed_successfully must have exited 0), and so on; then every other wait. Without
    such conditions: all starts, then all waits. ``services`` are in start order (dependencies
    first); a kept one-shot service that still runs is waited for too."""
    starting = {s.name for s in starts}
    pending = [s for s in services if s.name in starting]
    waiting = [s for s in services if s.name in starting
               or (s.one_shot and s.name in keep and keep[s.name].state == "running")]
    actions: list[Action] = []
    while pending:
        unready = {s.name for s in waiting}
        blocked: set[str] = set()
        for s in pending:
            if any(d in unready for d in (*s.after_healthy, *s.after_completed)) or any(d in blocked for d in s.depends_on):
                blocked.add(s.name)
        actions += [StartService(s) for s in pending if s.name not in blocked]
        pending = [s for s in pending if s.name in blocked]
        needed = {d for s in pending for d in (*s.after_healthy, *s.after_completed)} - blocked
        ready = [s for s in waiting if s.name in needed]
        if pending and not ready:  # cannot happen with dependencies in start order: start the rest
            actions += [StartService(s) for s in pending]
            pending = []
        actions += [AwaitReady(s) for s in ready]
        waiting = [s for s in waiting if s.name not in needed]
    return actions + [AwaitReady(s) for s in waiting]


def plan_removal(app: str, observed: Sequence[RunningService], environment: str | None = None) -> list[Action]:
    """Actions that take an app (or one of its environments) off its target: routes first, then
    containers."""
    mine = [c for c in observed if c.app == app and (environment is None or c.environment == environment)]
    actions: list[Action] = [RemoveRoute(name, env) for env, name in sorted({(c.environment, c.service) for c in mine})]
    actions += [StopContainer(c) for c in mine]
    return actions
