"""The reverse proxy: Caddy in a container of the data plane (adapters/dataplane.py), configured
only through its admin API on a unix socket under DOCKYARD_HOME, never by rewriting files.

Host-name routes are routes of one server (``dockyard``, on DOCKYARD_PROXY_PORT), each with an
``@id``. A published host port (domain/published_ports.py) is a server of its own in
``apps.http.servers``, keyed and ``@id``-ed ``<route prefix>-port-<HOST PORT>``: it listens on
``:HOST PORT`` (or a loopback address), without automatic HTTPS, and its one route (``@id``
``<server id>.<owner route id>``) proxies everything to the service's container.

A route's containers are not in Caddy's configuration: the route names them by DNS
(``dynamic_upstreams``, adapters/upstream_dns.py), so a release changes its containers without
reloading Caddy (a reload closes every client's idle connections). Its configuration changes, and
Caddy reloads, only when its hosts or its container port change, or when it is added or removed.
A request that cannot reach a container is tried again (for up to TRY_DURATION, on the names'
next answer): one whose container died while a release rolls back is served by the old one.

Caddy runs with ``--resume``: when Docker restarts it (a crash, an engine restart) it comes back
with the routes it had. The server adopts a running proxy at start and only reconfigures it.
"""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

from dockyard.adapters.dataplane import Component, DataPlane
from dockyard.adapters.local_http import Answer, HttpError, LocalHttp
from dockyard.adapters.upstream_dns import REFRESH, SETTLED, UpstreamNames
from dockyard.domain.errors import Unavailable
from dockyard.domain.model import Route
from dockyard.domain.published_ports import PortRoute

SERVER = "dockyard"
ROLE = "proxy"
TRY_DURATION = "5s"  # how long a request is tried again when its container cannot be reached
IDLE_TIMEOUT = "2s"  # an idle connection to a container is closed then: draining a container takes no longer


class CaddyProxy:
    def __init__(self, root: Path, listen_host: str, port: int, route_prefix: str, plane: DataPlane,
                 names: UpstreamNames | None = None, image: str = "caddy:2", binary: str = "caddy") -> None:
        self.root = root
        self.names = names  # None: every route's containers are in its configuration
        self._local = threading.local()  # .moved: this thread's set_route or set_port changed containers by name
        self.listen = f"{listen_host}:{port}"
        self.port = port
        self.route_prefix = route_prefix
        self.plane = plane
        self.image = image
        self.binary = binary
        self.socket = root / "admin.sock"
        self._http = LocalHttp(unix_socket=str(self.socket), host_header="caddy")

    def _fallback(self) -> dict[str, Any]:
        return {
            "@id": f"{self.route_prefix}-fallback",
            "handle": [{"handler": "static_response", "status_code": 404,
                        "body": "dockyard: no app answers at this host\n"}],
        }

    def _initial_config(self) -> dict[str, Any]:
        return {
            "admin": {"listen": f"unix/{self.socket}", "origins": ["caddy"]},
            "apps": {"http": {"servers": {SERVER: {
                "listen": [self.listen],
                "automatic_https": {"disable": True},
                "routes": [self._fallback()],
            }}}},
        }

    def component(self) -> Component:
        config = self.root / "caddy.json"
        return Component(
            role=ROLE, image=self.image, binary=self.binary, entrypoint="/usr/bin/caddy",
            args=("run", "--resume", "--config", str(config)), mounts=(self.root,),
            env=(("XDG_DATA_HOME", str(self.root / "data")), ("XDG_CONFIG_HOME", str(self.root / "config")),
                 ("HOME", str(self.root))),
        )

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self._http.get("/config/").status_code == 200
        except HttpError:
            return False

    @property
    def running(self) -> bool:
        return self.plane.running(ROLE)

    def ensure_running(self) -> None:
        """Adopt the running proxy (and its resolver), or start one; then make its listener what the
        settings say."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.names is not None:
            self.names.ensure_running()
        (self.root / "caddy.json").write_text(json.dumps(self._initial_config(), indent=2))
        if not self.plane.running(ROLE) and self.socket.exists():
            self.socket.unlink()  # left by a proxy that is gone
        adopted = self.plane.ensure(self.component()) and self._answers()
        self.plane.await_answer(ROLE, self._answers, f"the proxy (caddy) on {self.listen}",
                                "is the port taken? set DOCKYARD_PROXY_PORT to a free port")
        if not adopted or self._call("GET", f"/config/apps/http/servers/{SERVER}/listen").json() != [self.listen]:
            self._reconfigure()

    def _reconfigure(self) -> None:
        """The listener and the fallback as the settings say, keeping dockyard's routes."""
        current = self._call("GET", f"/config/apps/http/servers/{SERVER}").json() or {}
        routes = [r for r in current.get("routes") or [] if r.get("@id", "").startswith(self.route_prefix)
                  and not r["@id"].endswith("-fallback")]
        server = self._initial_config()["apps"]["http"]["servers"][SERVER]
        server["routes"] = [*routes, self._fallback()]
        r = self._call("PATCH" if current else "PUT", f"/config/apps/http/servers/{SERVER}", server)
        if r.status_code >= 400:
            raise Unavailable(f"the proxy refused its configuration: {r.text[:300]}",
                              "is the port taken? set DOCKYARD_PROXY_PORT to a free port")

    def stop(self) -> None:
        """The proxy outlives the server: nothing to do when the server stops."""

    def remove(self) -> bool:
        """Stop and remove the proxy's container and its resolver's (`dockyard server down`)."""
        removed = self.plane.remove(ROLE)
        if self.names is not None:
            self.names.remove_component()
        return removed

    def _route_json(self, route: Route) -> dict[str, Any]:
        return {
            "@id": route.id,
            "match": [{"host": list(route.hosts)}],
            "handle": [self._reverse_proxy(route.id, route.upstreams)],
            "terminal": True,
        }

    def _reverse_proxy(self, key: str, upstreams: tuple[str, ...]) -> dict[str, Any]:
        """Caddy's reverse_proxy to these containers (``host:port`` each), round-robin. When they
        share a port, by name: the names' file is written first (``key``: the route's id)."""
        split = [u.rpartition(":") for u in upstreams]
        ports = {port for _, _, port in split}
        if self.names is None or len(ports) != 1:
            if self.names is not None:
                self.names.forget(key)
            return _reverse_proxy(upstreams)
        if self.names.set(key, tuple(host.strip("[]") for host, _, _ in split)):
            self._local.moved = True
        return {
            "handler": "reverse_proxy",
            "dynamic_upstreams": {"source": "a", "name": self.names.name(key), "port": ports.pop(),
                                  "refresh": REFRESH, "resolver": {"addresses": [self.names.address]},
                                  "dial_timeout": "2s"},
            "load_balancing": {"selection_policy": {"policy": "round_robin"}, "try_duration": TRY_DURATION,
                               "try_interval": "100ms"},
            "transport": {"protocol": "http", "keep_alive": {"idle_timeout": IDLE_TIMEOUT}},
        }

    def _upstreams(self, key: str, handlers: list[dict[str, Any]]) -> tuple[str, ...]:
        """The containers of a route's handlers: in its configuration, or by name."""
        out: list[str] = []
        for handler in handlers:
            out += [str(u["dial"]) for u in handler.get("upstreams") or ()]
            dynamic = handler.get("dynamic_upstreams")
            if isinstance(dynamic, dict) and self.names is not None:
                port = dynamic.get("port", "80")
                out += [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in self.names.get(key) or ()]
        return tuple(out)

    def _unchanged(self, object_id: str, body: dict[str, Any]) -> bool:
        """Caddy has this very configuration for ``object_id`` already (no reload needed)."""
        r = self._call("GET", f"/id/{object_id}")
        return r.status_code == 200 and r.json() == body

    def _call(self, method: str, path: str, body: Any = None) -> Answer:
        try:
            return self._http.request(method, path, body)
        except HttpError as exc:
            raise Unavailable(f"the proxy's admin API does not answer: {exc}",
                              f"check its container: docker logs {self.plane.container_name(ROLE)}") from None

    def _settle(self) -> None:
        """Once this returns, no new request goes to a container the last change removed: Caddy
        asks the names again at most REFRESH after a change (a drain that starts sooner could see
        an old container idle, then get one more request)."""
        if getattr(self._local, "moved", False):
            self._local.moved = False
            time.sleep(SETTLED)

    def set_route(self, route: Route) -> None:
        self._local.moved = False
        body = self._route_json(route)
        if self._unchanged(route.id, body):
            self._settle()
            return  # its containers changed, by name only
        r = self._call("PATCH", f"/id/{route.id}", body)
        if r.status_code == 404 or (r.status_code >= 400 and "unknown object ID" in r.text):
            r = self._call("PUT", f"/config/apps/http/servers/{SERVER}/routes/0", body)
        if r.status_code >= 400:
            raise Unavailable(f"the proxy refused route {route.id}: {r.text[:300]}")

    def remove_route(self, route_id: str) -> None:
        r = self._call("DELETE", f"/id/{route_id}")
        if r.status_code >= 400 and r.status_code != 404 and "unknown object ID" not in r.text:
            raise Unavailable(f"the proxy refused to remove route {route_id}: {r.text[:300]}")
        if self.names is not None:
            self.names.forget(route_id)

    # -- published host ports: a server of their own each -------------------------------------
    def _port_json(self, port: PortRoute) -> dict[str, Any]:
        host = f"[{port.listen_host}]" if ":" in port.listen_host else port.listen_host
        return {
            "@id": port.id,
            "listen": [f"{host}:{port.port}"],
            "automatic_https": {"disable": True},
            "routes": [{
                "@id": f"{port.id}.{port.owner}",  # the service it serves: what removes an environment's ports
                "handle": [self._reverse_proxy(port.id, port.upstreams)],
                "terminal": True,
            }],
        }

    def set_port(self, port: PortRoute) -> None:
        """A server of its own in ``apps.http.servers``, keyed and ``@id``-ed by ``port.id``: set
        again, it is replaced in place (Caddy keeps the listener across the change)."""
        self._local.moved = False
        body = self._port_json(port)
        if self._unchanged(port.id, body):
            self._settle()
            return
        r = self._call("PATCH", f"/id/{port.id}", body)
        if r.status_code == 404 or (r.status_code >= 400 and "unknown object ID" in r.text):
            r = self._call("PUT", f"/config/apps/http/servers/{port.id}", body)
        if r.status_code >= 400:
            raise Unavailable(f"the proxy cannot serve the host port {port.port}: {r.text[:300]}",
                              "something else may have taken the port meanwhile: deploy again, or publish another port")

    def remove_port(self, port_id: str) -> None:
        r = self._call("DELETE", f"/id/{port_id}")
        if r.status_code >= 400 and r.status_code != 404 and "unknown object ID" not in r.text:
            raise Unavailable(f"the proxy refused to stop serving {port_id}: {r.text[:300]}")
        if self.names is not None:
            self.names.forget(port_id)

    def ports(self) -> list[PortRoute]:
        servers = self._call("GET", "/config/apps/http/servers").json() or {}
        out = []
        for key, raw in servers.items():
            if not key.startswith(f"{self.route_prefix}-port-") or not isinstance(raw, dict):
                continue
            host, _, number = ((raw.get("listen") or [""])[0]).rpartition(":")
            routes = raw.get("routes") or [{}]
            ups = self._upstreams(key, routes[0].get("handle", []))
            owner = str(routes[0].get("@id", "")).removeprefix(f"{key}.")
            out.append(PortRoute(id=key, port=int(number) if number.isdigit() else 0, upstreams=ups, owner=owner,
                                 listen_host=host.strip("[]")))
        return sorted(out, key=lambda p: p.port)

    def host_port_free(self, port: int, protocol: str, host_ip: str = "") -> bool:
        """The proxy runs on this host's network: what this process can bind, it can."""
        if protocol == "tcp" and port == self.port:
            return False
        return host_port_free(port, protocol, host_ip)

    def routes(self) -> list[Route]:
        r = self._call("GET", f"/config/apps/http/servers/{SERVER}/routes")
        out = []
        for raw in r.json() or []:
            rid = raw.get("@id", "")
            if not rid.startswith(self.route_prefix) or rid.endswith("-fallback"):
                continue
            hosts = tuple(h for m in raw.get("match", []) for h in m.get("host", []))
            ups = self._upstreams(rid, raw.get("handle", []))
            out.append(Route(id=rid, hosts=hosts, upstreams=ups))
        return out


def host_port_free(port: int, protocol: str, host_ip: str = "", proc: Path = Path("/proc/net")) -> bool:
    """Whether nothing on this host holds ``port``: no listening TCP socket (or bound UDP socket)
    in ``/proc/net`` (which sees them all, whoever owns them), and a test bind succeeds (on every
    interface, IPv4 and IPv6, unless ``host_ip`` narrows it). SCTP is left to the engine."""
    if protocol == "sctp":
        return True
    state = "0A" if protocol == "tcp" else "07"  # LISTEN; an unconnected bound UDP socket
    for name in (protocol, f"{protocol}6"):
        try:
            lines = (proc / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == state and fields[1].rpartition(":")[2] == f"{port:04X}":
                return False
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    for address in [host_ip] if host_ip else ["0.0.0.0", "::"]:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            probe = socket.socket(family, kind)
        except OSError:
            continue  # no IPv6 here
        with probe:
            try:
                if kind == socket.SOCK_STREAM:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
    return True


def _reverse_proxy(upstreams: tuple[str, ...]) -> dict[str, Any]:
    """Caddy's reverse_proxy to these upstreams, in its configuration (they have different
    ports, or there are none); several: round-robin, a request that cannot reach one tried on
    the next for up to 2s."""
    handler: dict[str, Any] = {"handler": "reverse_proxy", "upstreams": [{"dial": u} for u in upstreams]}
    if len(upstreams) > 1:
        handler["load_balancing"] = {"selection_policy": {"policy": "round_robin"}, "try_duration": "2s"}
    return handler
