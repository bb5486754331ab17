"""How many containers run a service (pure): compose ``deploy.replicas`` (or the legacy
``scale``), overridden per environment by dockyard.yml ``services: {NAME: {replicas: N}}``, and
over both, the counts set with ``dockyard scale APP SERVICE=N --env ENV`` (kept by the environment).

Each replica is a container of its own (label ``dockyard.replica``, from 0), with the service's
names on the app network (DNS round-robin, as Compose); the proxy spreads a web service's traffic
over all of them. 0 replicas: the service runs no container (and is not routed). More than one
is refused where two containers would clash: a named volume (one container uses it at a time), a
one-shot service (it runs once), host ports Docker publishes (one container binds them), a
``container_name`` (one container has it; Compose refuses it too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from dockyard.domain.errors import InvalidSource
from dockyard.domain.model import ServiceSpec

MAX_REPLICAS = 100


def single_only(service: ServiceSpec) -> tuple[str, str] | None:
    """Why ``service`` cannot run more than one container, and what to do; None when it can."""
    if service.one_shot:
        return ("it runs once (a service waits for it with service_completed_successfully)",
                "run it once: drop replicas")
    if service.container_name:
        return (f"its container_name {service.container_name!r} names one container (Compose refuses it too)",
                "remove container_name: the service's own name reaches every replica")
    if service.direct_ports:
        ports = ", ".join(f"{h}/{p}" for h, _, p, _ in service.direct_ports)
        return (f"Docker publishes its host port{'s' if ',' in ports else ''} {ports}, which one container binds "
                "at a time", "let the proxy serve HTTP ports (no 'x-dockyard-publish: direct'), or drop replicas")
    if service.stateful:
        return ("it keeps data in a volume, which one container uses at a time",
                "keep the data in a service of its own (a database) and scale the stateless one, or drop replicas")
    return None


def refusal(service: ServiceSpec, where: str) -> InvalidSource | None:
    """The error for ``service`` asking more replicas than it may run (``where``: the key's
    location, as 'docker-compose.yml line 4: services/web/deploy/replicas'); None when fine."""
    if not 0 <= service.replicas <= MAX_REPLICAS:
        return InvalidSource(f"{where}: {service.replicas} should be a whole number from 0 to {MAX_REPLICAS}",
                             "give how many containers run the service")
    why = single_only(service) if service.replicas > 1 else None
    if why is None:
        return None
    return InvalidSource(f"{where}: {service.name} cannot run {service.replicas} containers: {why[0]}", why[1])


def check(services: Iterable[ServiceSpec]) -> None:
    """Refuse a release whose services ask more replicas than they may run (an image's VOLUME
    makes a service stateful only once the image is resolved)."""
    for s in services:
        error = refusal(s, f"service {s.name}: replicas")
        if error is not None:
            raise error


def scaled(services: Sequence[ServiceSpec], counts: Mapping[str, int], strict: bool = False) -> tuple[ServiceSpec, ...]:
    """The services with the counts ``dockyard scale`` set. A count the service cannot run is
    refused; a count for a service the stack no longer has is ignored, unless ``strict`` (the
    scale command itself), where it is refused naming the services there are."""
    by_name = {s.name: s for s in services}
    for name, count in counts.items():
        service = by_name.get(name)
        where = f"dockyard scale {name}={count}"
        if service is None:
            if strict:
                raise InvalidSource(f"{where}: the live release has no service {name!r}",
                                    f"name one of: {', '.join(sorted(by_name)) or '(none)'}")
            continue
        error = refusal(replace(service, replicas=count), where)
        if error is not None:
            raise error
    return tuple(replace(s, replicas=counts[s.name]) if s.name in counts else s for s in services)


def counts_from_words(words: list[str]) -> dict[str, int]:
    """``["web=3", "worker=0"]`` as counts; a DockyardError naming the word that is not one."""
    counts: dict[str, int] = {}
    for word in words:
        name, sep, number = word.partition("=")
        if not sep or not number.isdigit() or len(number) > 4:
            raise InvalidSource(f"{word[:80]!r} is not SERVICE=COUNT", "e.g. dockyard scale shop web=3")
        counts[name] = int(number)
    return counts
