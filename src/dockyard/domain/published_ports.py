"""Published host ports: compose's ``ports: ["50011:8894"]``, served on this host (pure).

How each entry of a service's ``ports`` is read (``service_ports``):

- ``"8894"``, ``{target: 8894}`` (no host side): not published. The service's first such TCP
  port is routed by host name through the proxy, as before (``ServiceSpec.port``).
- ``"50011:8894"``, ``"50011:8894/tcp"``, ``{target: 8894, published: 50011}``: assumed HTTP and
  served by the **proxy**: Caddy listens on the host port and proxies to the container's address
  on its app network. Releases stay start-first: the port switches to the new container with the
  host routes (``RoutePort`` in ``planning/deploy.py``), and back if the release fails.
- ``"5353:53/udp"`` (or ``sctp``), the long syntax with ``mode: host``, and every mapping of a
  service marked ``x-dockyard-publish: direct`` (a TCP protocol that is not HTTP: a database,
  SMTP...): published **directly** by Docker, a host port binding on the container. One host
  port is bound by one container at a time, so such a service is released **stop-first**, as a
  stateful one: its old container stops before the new one starts (and starts again if the
  release fails); the job log says so.
- ``host_ip``: none, ``0.0.0.0`` or ``::``: every interface; ``127.0.0.1`` or ``::1``: that
  loopback address only; another address is not honoured (every interface, with a warning).
- A range (``"50011-50013:8894-8896"``) is expanded when both sides have the same length and it
  holds at most MAX_RANGE ports; a larger or uneven one is refused, naming the key path. A random
  host port (``"127.0.0.1::8894"``) is not published (a warning says so).
- A host port is published once per file and transport (``53/tcp`` and ``53/udp`` may go
  together).

``remap`` changes host ports as an environment's ``dockyard.yml`` says (``ports: {50011: 51011}``).
``refuse_conflicts`` refuses, before a release changes anything, a host port that is dockyard's
own, another app's or environment's, or that would move between the proxy and Docker in one
release; what it returns is left for the caller to probe on the host (something else may hold it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from dockyard.domain.errors import Conflict, InvalidSource, shown
from dockyard.domain.images import port_number
from dockyard.domain.model import PROXIED, ServiceSpec

Parts = tuple[str | int, ...]
Published = tuple[int, int, str, str]  # (host port, container port, protocol, host ip): ServiceSpec.published

PUBLISH_KEY = "x-dockyard-publish"  # a service's key: "proxy" (the default) or "direct"
PUBLISH_MODES = ("proxy", "direct")
TRANSPORTS = ("tcp", "udp", "sctp")
MAX_RANGE = 20
EVERY_INTERFACE = ("", "0.0.0.0", "::")  # what compose files write for "every interface"
LOOPBACK = ("127.0.0.1", "::1")
HINT = "write '8080:3000' (host:container), '127.0.0.1:8080:3000', '5353:53/udp', or '3000' (not published)"


class Where(Protocol):
    """Refusals at key paths of one compose file, naming its line (compose_service.Where)."""

    def error(self, parts: Parts, message: str, hint: str = "") -> InvalidSource: ...
    def line(self, parts: Parts) -> int: ...


@dataclass(frozen=True)
class PortEntry:
    """One ``ports`` entry, read. ``hosts``: None without a host side, () for a random host port,
    else one host port per container port."""

    containers: tuple[int, ...]
    hosts: tuple[int, ...] | None = None
    protocol: str = "tcp"
    host_ip: str = ""  # as written
    mode: str = ""  # the long syntax's: "host" or "ingress"


@dataclass(frozen=True)
class ServicePorts:
    """What a service's ``ports`` say: the container port routed by host name (None: none), the
    host ports it publishes, and where each is written."""

    routed: int | None = None
    published: tuple[Published, ...] = ()
    places: tuple[Parts, ...] = ()


@dataclass(frozen=True)
class PortRoute:
    """The proxy listens on ``port`` (on ``listen_host``, "" for every interface) and sends all
    that comes to ``upstreams``. ``owner`` is the route id of the service it serves (its app,
    environment and service): what removes an environment's ports."""

    id: str
    port: int
    upstreams: tuple[str, ...]
    owner: str = ""
    listen_host: str = ""


# -- reading ----------------------------------------------------------------------------------------
def read_entry(raw: Any) -> PortEntry:
    """One ``ports`` entry; ValueError (its message starting with ``port '...'``) when it is not one."""
    if isinstance(raw, Mapping):
        return _long_entry(raw)
    text = str(raw).strip() if not isinstance(raw, bool) else ""
    spec, slash, protocol = text.partition("/")
    protocol = protocol.lower() if slash else "tcp"
    host_ip, host = "", None
    if spec.startswith("["):  # [::1]:50011:8894
        ip, bracket, rest = spec[1:].partition("]")
        host, colon, container = rest.removeprefix(":").partition(":")
        if not bracket or not rest.startswith(":") or not colon:
            raise _bad(raw)
        host_ip = ip
    else:
        parts = spec.rsplit(":", 2)
        container = parts[-1]
        if len(parts) > 1:
            host = parts[-2]
        if len(parts) > 2:
            host_ip = parts[0]
    return _entry(raw, container, host, protocol, host_ip, "")


def _long_entry(raw: Mapping[str, Any]) -> PortEntry:
    target = raw.get("target")
    if target is None or isinstance(target, bool):
        raise ValueError(f"port {shown(str(dict(raw)), 80)} needs 'target', the container port")
    published = raw.get("published")
    host = None if published is None or published == "" else str(published)
    protocol = str(raw.get("protocol") or "tcp").lower()
    mode = str(raw.get("mode") or "")
    if mode not in ("", "host", "ingress"):
        raise ValueError(f"port {shown(str(dict(raw)), 80)}: mode {shown(mode, 30)} is not 'host' or 'ingress'")
    return _entry(raw, str(target), "" if host is None and raw.get("host_ip") else host, protocol,
                  str(raw.get("host_ip") or ""), mode)


def _entry(raw: Any, container: str, host: str | None, protocol: str, host_ip: str, mode: str) -> PortEntry:
    if protocol not in TRANSPORTS:
        raise ValueError(f"port {shown(_text(raw), 80)}: the protocol {shown(protocol, 20)} is not tcp, udp or sctp")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise ValueError(f"port {shown(_text(raw), 80)}: {shown(host_ip, 60)} is not an IP address") from None
    low, high = _range(raw, container)
    if not host:  # no host side, or a random host port ("127.0.0.1::8894"): only the first port counts
        return PortEntry((low,), None if host is None else (), protocol, host_ip, mode)
    hosts = _expanded(raw, host)
    if len(hosts) != high - low + 1:
        if low == high:
            raise ValueError(f"port {shown(_text(raw), 80)}: a range of host ports for one container port lets "
                             "Docker pick one: dockyard publishes fixed host ports")
        raise ValueError(f"port {shown(_text(raw), 80)}: the host range has {len(hosts)} ports, the container "
                         f"range {high - low + 1}")
    return PortEntry(tuple(range(low, high + 1)), hosts, protocol, host_ip, mode)


def _range(raw: Any, text: str) -> tuple[int, int]:
    first, dash, last = text.strip().partition("-")
    low, high = port_number(first), port_number(last) if dash else port_number(first)
    if low is None or high is None or high < low:
        raise _bad(raw)
    return low, high


def _expanded(raw: Any, text: str) -> tuple[int, ...]:
    """The host ports of a host side: at most MAX_RANGE."""
    low, high = _range(raw, text)
    if high - low + 1 > MAX_RANGE:
        raise ValueError(f"port {shown(_text(raw), 80)}: the range {low}-{high} holds {high - low + 1} host ports; "
                         f"dockyard publishes at most {MAX_RANGE} per entry")
    return tuple(range(low, high + 1))


def _text(raw: Any) -> str:
    return str(dict(raw)) if isinstance(raw, Mapping) else str(raw)


def _bad(raw: Any) -> ValueError:
    return ValueError(f"port {shown(_text(raw), 80)} is not understood")


def interface(host_ip: str) -> str:
    """The host ip a published port is bound to: "" (every interface) or a loopback address."""
    return host_ip if host_ip in LOOPBACK else ""


def is_direct(entry: PortEntry, publish: str) -> bool:
    """Published by Docker rather than served by the proxy."""
    return entry.protocol != "tcp" or entry.mode == "host" or publish == "direct"


def service_ports(at: Parts, body: Mapping[str, Any], where: Where) -> ServicePorts:
    """The routed port and published host ports of the service at ``at`` (``("services", NAME)``)."""
    publish = body.get(PUBLISH_KEY, "proxy")
    if publish not in PUBLISH_MODES:
        raise where.error((*at, PUBLISH_KEY), f"{shown(str(publish), 40)} is not 'proxy' or 'direct'",
                          "'direct' publishes the service's host ports with Docker (not HTTP: a database, a UDP "
                          "service...), which releases it stop-first; 'proxy' (the default) serves them as HTTP")
    routed: int | None = None
    published: list[Published] = []
    places: list[Parts] = []
    for i, raw in enumerate(body.get("ports") or []):
        here: Parts = (*at, "ports", i)
        try:
            entry = read_entry(raw)
        except ValueError as exc:
            raise where.error(here, str(exc), HINT) from None
        direct = is_direct(entry, publish)
        if routed is None and entry.protocol == "tcp" and not (entry.hosts and direct):
            routed = entry.containers[0]
        for host, container in zip(entry.hosts or (), entry.containers, strict=False):
            published.append((host, container, entry.protocol if direct else PROXIED, interface(entry.host_ip)))
            places.append(here)
    return ServicePorts(routed, tuple(published), tuple(places))


def check_file(found: Sequence[ServicePorts], where: Where) -> None:
    """A host port is published once per file and transport."""
    first: dict[tuple[int, str], Parts] = {}
    for ports in found:
        for (host, _, protocol, _), here in zip(ports.published, ports.places, strict=True):
            seen = first.setdefault((host, transport(protocol)), here)
            if seen != here:  # one entry's range holds distinct ports
                raise where.error(here, f"the host port {_named(host, protocol)} is already published by "
                                        f"{'/'.join(map(str, seen))} (line {where.line(seen)})",
                                  "publish each host port once: give this one another host port")


def transport(protocol: str) -> str:
    """The transport a published port uses on the host: the proxy's are TCP."""
    return "tcp" if protocol == PROXIED else protocol


def _named(host: int, protocol: str) -> str:
    return f"{host}/{protocol}" if protocol in ("udp", "sctp") else str(host)


def url(port: Published, host_name: str) -> str:
    """Where a published port answers: ``http://HOST:PORT/`` through the proxy, else
    ``udp://HOST:PORT`` (a loopback-only port names its address)."""
    host, _, protocol, ip = port
    name = (f"[{ip}]" if ":" in ip else ip) if ip else host_name
    return f"http://{name}:{host}/" if protocol == PROXIED else f"{protocol}://{name}:{host}"


def listing(services: Iterable[Mapping[str, Any]], default_host: str) -> list[dict[str, Any]]:
    """A release's published ports (its services as stored) as answers show them, each with its
    url (a host name of its service, else ``default_host``)."""
    out = []
    for s in services:
        name = (list(s.get("hosts") or ()) or [default_host])[0]
        for host, container, protocol, ip in s.get("published") or ():
            port = (int(host), int(container), str(protocol), str(ip))
            out.append({"service": s.get("name"), "host_port": port[0], "container_port": port[1],
                        "protocol": port[2], "via": "proxy" if port[2] == PROXIED else "docker",
                        "host_ip": port[3], "url": url(port, name)})
    return out


# -- remapping (dockyard.yml) ---------------------------------------------------------------------
def remap(services: Sequence[ServiceSpec], mapping: Mapping[int, int]) -> tuple[ServiceSpec, ...]:
    """The services with their host ports changed as ``mapping`` says: the compose file's host port
    → the one this environment publishes instead (dockyard.yml's ``ports: {50011: 51011}``). Every
    protocol of that host port moves. A host port no service publishes, a number that is not a
    port, or a result that publishes one host port twice is refused (InvalidSource)."""
    for old, new in mapping.items():
        if port_number(str(new)) is None or isinstance(new, bool):
            raise InvalidSource(f"ports: {old}: {shown(str(new), 20)} is not a host port (1-65535)",
                                "give a port number, e.g. 51011")
        if not any(p[0] == old for s in services for p in s.published):
            raise InvalidSource(f"ports: the host port {old} is published by no service of the compose file",
                                "remap a host port the compose file publishes, e.g. '50011:8894' → ports: {50011: 51011}")
    out = tuple(replace(s, published=tuple((mapping.get(h, h), c, p, ip) for h, c, p, ip in s.published))
                if s.published else s for s in services)
    held: dict[tuple[int, str], str] = {}
    for s in out:
        for host, _, protocol, _ in s.published:
            owner = held.setdefault((host, transport(protocol)), s.name)
            if owner != s.name or sum(1 for p in s.published if (p[0], transport(p[2])) == (host, transport(protocol))) > 1:
                raise InvalidSource(f"ports: once remapped, the host port {_named(host, protocol)} is published twice "
                                    f"(services {owner} and {s.name})", "remap it to a host port no service publishes")
    return out


# -- conflicts at release time ------------------------------------------------------------------
def remedy(environment: str, service: str, host: int) -> str:
    return (f"publish another host port: remap it for this environment in dockyard.yml (environments/{environment}/"
            f"services/{service}/ports: {{{host}: <free port>}}) or change it in the compose file")


def refuse_conflicts(
    environment: str,
    services: Sequence[ServiceSpec],
    live: Sequence[ServiceSpec],
    served: Collection[int],
    reserved: Mapping[int, str],
    others: Mapping[tuple[int, str], str],
) -> list[tuple[ServiceSpec, Published]]:
    """Refuse (Conflict, before anything changes) a release whose host ports clash: one host port
    published twice, one of dockyard's own (``reserved``: port → what, TCP), one another app or
    environment holds (``others``: (port, transport) → who, as a message says it), or one that would
    move between the proxy and Docker, or between two services published by Docker, within one
    release (the old holder keeps it until the switch). ``live`` is the environment's live
    release, ``served`` the host ports the proxy serves for the environment already.

    Returns the published ports the environment holds nowhere yet: the caller probes the host
    for them (another program may hold one)."""
    mine: dict[tuple[int, str], tuple[str, str]] = {}  # (port, transport) -> (service, protocol) of the live release
    for s in live:
        for host, _, protocol, _ in s.published:
            mine[(host, transport(protocol))] = (s.name, protocol)
    for host in served:
        mine.setdefault((host, "tcp"), ("", PROXIED))
    wanted: dict[tuple[int, str], str] = {}
    probe: list[tuple[ServiceSpec, Published]] = []
    for s in services:
        for port in s.published:
            host, _, protocol, _ = port
            key = (host, transport(protocol))
            name = _named(host, protocol)
            first = wanted.setdefault(key, s.name)
            if first != s.name or sum(1 for p in s.published if (p[0], transport(p[2])) == key) > 1:
                raise Conflict(f"the host port {name} is published twice, by services {first} and {s.name}: "
                               f"{remedy(environment, s.name, host)}", "publish each host port once")
            if key[1] == "tcp" and host in reserved:
                raise Conflict(f"the host port {host} is dockyard's own ({reserved[host]}): service {s.name} cannot "
                               f"publish it; {remedy(environment, s.name, host)}", "dockyard's ports are its settings "
                               "(DOCKYARD_API_PORT, DOCKYARD_PROXY_PORT, DOCKYARD_REGISTRY_PORT)")
            if key in others:
                raise Conflict(f"the host port {name} is already published by {others[key]}: service {s.name} cannot "
                               f"publish it too; {remedy(environment, s.name, host)}",
                               "each host port is one app environment's")
            held = mine.get(key)
            if held is None:
                probe.append((s, port))
                continue
            holder, how = held
            if (how == PROXIED) != (protocol == PROXIED):
                was, now = ("the proxy", "Docker") if how == PROXIED else ("Docker", "the proxy")
                raise Conflict(f"the host port {name} of service {s.name} would move from {was} to {now} within one "
                               "release, while the live release holds it: release once without it, then with it",
                               "or publish another host port")
            if protocol != PROXIED and holder != s.name:
                raise Conflict(f"the host port {name} is published by Docker for service {holder} of the live release: "
                               f"service {s.name} cannot take it within one release: release once without it, then "
                               "with it", "or publish another host port")
    return probe


def holders(app: str, environment: str, services: Iterable[ServiceSpec]) -> dict[tuple[int, str], str]:
    """Who holds each host port of a live release, as a conflict names it."""
    return {(host, transport(protocol)): f"app {app}'s environment {environment} (service {s.name})"
            for s in services for host, _, protocol, _ in s.published}
