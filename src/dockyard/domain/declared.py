"""What dockyard.yml declares for one environment, applied to the services a commit runs (pure):
routes become hosts of their service, host ports, replica counts and HTTP health checks apply, and what dockyard cannot honour yet is said, never dropped.
Variables and secrets are merged earlier (services/inspect.declared_variables), the environments
themselves are synced by services/environments.py."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace

from dockyard.domain import hosts, published_ports, replicas
from dockyard.domain.dockyard_file import DockyardFile, HealthDecl, ServiceDecl
from dockyard.domain.errors import InvalidSource
from dockyard.domain.model import Environment, ServiceSpec


def with_routes(services: Sequence[ServiceSpec], declared: DockyardFile | None, environment: str, app: str,
                base_domain: str, claims: Mapping[str, Iterable[str]]) -> tuple[ServiceSpec, ...]:
    """Each route of the environment (host -> service:port) added to its service's hosts. A
    route must name a web service of the stack by the port it is routed on, and a host the app
    may answer at (under APP.<base domain>, or outside the base domain and no other app's)."""
    env = declared.environment(environment) if declared is not None else None
    if env is None or not env.routes:
        return tuple(services)
    by_name = {s.name: s for s in services}
    added: dict[str, list[str]] = {}
    for route in env.routes:
        where = f"dockyard.yml: environments/{environment}/routes/{route.host}"
        service = by_name.get(route.service)
        if service is None:
            raise InvalidSource(f"{where}: the stack has no service {route.service!r}",
                                "name a service of the compose file (or the app's single service)")
        if service.port != route.port:
            routed = f"is routed on port {service.port}" if service.port else "publishes no port"
            raise InvalidSource(f"{where}: {route.service} {routed}, not {route.port}",
                                "route to the first container port its compose 'ports' (or its image's EXPOSE) gives")
        hosts.claim_domains(app, [route.host], base_domain, claims)  # raises when not the app's to take
        added.setdefault(route.service, []).append(route.host)
    return tuple(replace(s, hosts=tuple(dict.fromkeys((*s.hosts, *added.get(s.name, ()))))) for s in services)


def with_ports(services: Sequence[ServiceSpec], declared: DockyardFile | None,
               environment: str) -> tuple[ServiceSpec, ...]:
    """Each service's host ports remapped as the environment declares (``services: {api1: {ports:
    {50011: 51011}}}``), so two environments of one stack share a host."""
    env = declared.environment(environment) if declared is not None else None
    if env is None or not any(s.ports for s in env.services):
        return tuple(services)
    by_name = {s.name: s for s in services}
    out = dict(by_name)
    for decl in env.services:
        if not decl.ports:
            continue
        where = f"dockyard.yml: environments/{environment}/services/{decl.name}/"
        if decl.name not in by_name:
            raise InvalidSource(f"{where}ports: the stack has no service {decl.name!r}",
                                "name a service of the compose file")
        try:
            [out[decl.name]] = published_ports.remap([by_name[decl.name]], {m.compose: m.published for m in decl.ports})
        except InvalidSource as exc:
            raise InvalidSource(where + exc.message, exc.hint) from None
    try:
        return published_ports.remap(list(out.values()), {})  # no host port published twice once remapped
    except InvalidSource as exc:
        raise InvalidSource(f"dockyard.yml: environments/{environment}/services: " + exc.message, exc.hint) from None


def _declaring(services: Sequence[ServiceSpec], declared: DockyardFile | None, environment: str,
               key: str) -> Iterator[tuple[ServiceDecl, ServiceSpec, str]]:
    """The environment's service declarations that set ``key``, each with its service of the
    stack and where it is written; one naming a service the stack lacks is refused."""
    env = declared.environment(environment) if declared is not None else None
    by_name = {s.name: s for s in services}
    for decl in env.services if env is not None else ():
        if getattr(decl, key) is None:
            continue
        where = f"dockyard.yml: environments/{environment}/services/{decl.name}/{key}"
        service = by_name.get(decl.name)
        if service is None:
            raise InvalidSource(f"{where}: the stack has no service {decl.name!r}", "name a service of the compose file")
        yield decl, service, where


def with_replicas(services: Sequence[ServiceSpec], declared: DockyardFile | None,
                  environment: str) -> tuple[ServiceSpec, ...]:
    """Each service's replica count as the environment declares (``services: {web: {replicas:
    3}}``), over the compose file's; refused where the service cannot run that many
    (domain/replicas.py)."""
    counts: dict[str, int] = {}
    for decl, service, where in _declaring(services, declared, environment, "replicas"):
        assert decl.replicas is not None
        error = replicas.refusal(replace(service, replicas=decl.replicas), where)
        if error is not None:
            raise error
        counts[decl.name] = decl.replicas
    return tuple(replace(s, replicas=counts[s.name]) if s.name in counts else s for s in services)


def with_stateful(services: Sequence[ServiceSpec], declared: DockyardFile | None,
                  environment: str) -> tuple[ServiceSpec, ...]:
    """Which services the environment declares stateful (``services: {db: {stateful: true}}``):
    released stop-first, one container at a time (``false`` leaves compose's order as it is)."""
    declared_stateful = set()
    for decl, service, where in _declaring(services, declared, environment, "stateful"):
        if decl.stateful and service.replicas > 1:
            raise InvalidSource(f"{where}: {decl.name} runs {service.replicas} replicas, and a stateful service runs "
                                "one container at a time", "drop its replicas, or do not declare it stateful")
        if decl.stateful:
            declared_stateful.add(decl.name)
    return tuple(replace(s, stop_first=True) if s.name in declared_stateful else s for s in services)


def with_health(services: Sequence[ServiceSpec], declared: DockyardFile | None,
                environment: str) -> tuple[ServiceSpec, ...]:
    """Each service's HTTP health check as the environment declares (``services: {web: {health:
    {path: /up}}}``): a new container is ready once the path answers. It must be a web service."""
    checks: dict[str, HealthDecl] = {}
    for decl, service, where in _declaring(services, declared, environment, "health"):
        assert decl.health is not None
        if not service.is_web:
            raise InvalidSource(f"{where}: {decl.name} has no port to ask (no EXPOSE, compose 'ports' or 'expose')",
                                "give the service a port, or check it with a compose healthcheck instead")
        checks[decl.name] = decl.health
    return tuple(replace(s, http_check=checks[s.name].path, http_check_status=checks[s.name].status,
                         http_check_interval=checks[s.name].interval.total_seconds(),
                         http_check_timeout=checks[s.name].timeout.total_seconds())
                 if s.name in checks else s for s in services)


def setting_conflicts(declared: DockyardFile | None, environment: Environment, branch: str | None) -> list[str]:
    """What dockyard.yml declares of the environment that differs from dockyard's settings (made
    with the CLI or the API, which stand): reported at each deploy, never resolved silently."""
    env = declared.environment(environment.name) if declared is not None else None
    if env is None:
        return []
    out = []
    if env.branch is not None and env.branch != branch:
        out.append(f"dockyard.yml: environments/{environment.name}/branch is {env.branch!r}, but {environment.name} "
                   f"deploys from {branch!r} (set with the CLI or the API, which stands): make them agree "
                   f"(dockyard envs set-branch {environment.app} {environment.name} {env.branch})")
    scaled = dict(environment.replicas)
    for service in env.services:
        if service.replicas is not None and scaled.get(service.name, service.replicas) != service.replicas:
            out.append(f"dockyard.yml: environments/{environment.name}/services/{service.name}/replicas is "
                       f"{service.replicas}, but dockyard scale set {scaled[service.name]} (which stands): make them "
                       f"agree (dockyard scale {environment.app} {service.name}={service.replicas} --env "
                       f"{environment.name})")
    if env.target != environment.target:
        out.append(f"dockyard.yml: environments/{environment.name}/target is {env.target!r}, but {environment.name} "
                   f"runs on {environment.target!r}: an environment keeps its target (remove it and deploy again "
                   "to move it)")
    return out
