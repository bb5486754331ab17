"""What to repair in one environment after dockyard stopped in the middle of a release (pure):
from the live release (its id and services) and the containers observed, the containers to
remove and the halted ones to start again. See services/recovery.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.domain.model import RunningService, ServiceSpec


@dataclass(frozen=True)
class Repair:
    container: RunningService
    resume: bool  # True: start it again; False: remove it
    why: str


def serving(spec: ServiceSpec, observed: Sequence[RunningService], live: int | None = None,
            states: tuple[str, ...] = ("running",)) -> list[RunningService]:
    """The containers of the live ``spec`` (kept ones may be of earlier releases, never of a
    release newer than ``live``): its replicas, one per index, at most as many as it runs."""
    by_replica: dict[int, RunningService] = {}
    for c in observed:
        if (c.service == spec.name and c.state in states and c.spec_hash == spec.spec_hash
                and (live is None or c.release <= live)):
            by_replica.setdefault(c.replica, c)
    return [by_replica[i] for i in sorted(by_replica)][:spec.replicas]


def repairs(live: int | None, services: Sequence[ServiceSpec], observed: Sequence[RunningService]) -> list[Repair]:
    """Containers of an attempt that never went live go; halted live ones start again; old ones
    the live release no longer runs go once every live service has all its containers running."""
    out: list[Repair] = []
    newer = [c for c in observed if live is None or c.release > live]
    out += [Repair(c, False, "started by a release that never went live") for c in newer]
    rest = [c for c in observed if c not in newer]
    keep: set[str] = set()
    complete = True
    for spec in services:
        running = serving(spec, rest, live)
        if spec.one_shot:  # done (exited 0) or still running: kept as a release keeps them
            keep |= {c.id for c in rest if c.service == spec.name and c.spec_hash == spec.spec_hash}
            continue
        halted = [c for c in serving(spec, rest, live, ("exited", "created"))
                  if c.replica not in {r.replica for r in running}][:max(spec.replicas - len(running), 0)]
        out += [Repair(c, True, "halted for a release that never went live") for c in halted]
        keep |= {c.id for c in (*running, *halted)}
        complete = complete and len(running) + len(halted) >= spec.replicas
    if complete:
        out += [Repair(c, False, "the live release no longer runs it") for c in rest if c.id not in keep]
    return out
