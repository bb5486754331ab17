"""Planning a release: a pure function from desired and observed state to ordered actions.

The order is what makes a release safe: every new container starts and answers before any
traffic moves, and old containers stop only after the proxy points at the new ones. If anything
before the switch fails, the applier removes what it started and the old release keeps serving.
Stateful services (a named volume) are the exception: start-first would put two containers on
one volume, so their old container is halted first and started again if the release fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.domain.model import Release, RunningService, ServiceSpec


@dataclass(frozen=True)
class EnsureNetwork:
    app: str


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
    actions: list[Action] = [EnsureNetwork(release.app)]
    keep: dict[str, RunningService] = {}
    for service in release.services:
        for c in mine:
            if c.service == service.name and c.state == "running" and c.spec_hash == service.spec_hash:
                keep.setdefault(service.name, c)
    starts = [s for s in release.services if s.name not in keep]
    actions += [KeepService(s, keep[s.name]) for s in release.services if s.name in keep]
    # Stateful services are stop-first: their old containers stop before the new ones start.
    stateful = {s.name for s in starts if s.stateful}
    actions += [HaltContainer(c) for c in mine if c.service in stateful and c.state == "running"]
    actions += [StartService(s) for s in starts]
    actions += [AwaitReady(s) for s in starts]
    actions += [RouteTraffic(s) for s in release.services if s.is_web]
    desired_web = {s.name for s in release.services if s.is_web}
    old_web = {c.service for c in mine} - desired_web
    actions += [RemoveRoute(name) for name in sorted(old_web)]
    kept_ids = {c.id for c in keep.values()}
    actions += [StopContainer(c) for c in mine if c.id not in kept_ids]
    return actions


def plan_removal(app: str, observed: Sequence[RunningService]) -> list[Action]:
    """Actions that take an app off the host: routes first, then containers."""
    mine = [c for c in observed if c.app == app]
    actions: list[Action] = [RemoveRoute(name) for name in sorted({c.service for c in mine})]
    actions += [StopContainer(c) for c in mine]
    return actions
