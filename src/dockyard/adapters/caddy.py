"""The reverse proxy: Caddy in a container of the data plane (adapters/dataplane.py), configured
only through its admin API on a unix socket under DOCKYARD_HOME, never by rewriting files.

Caddy runs with ``--resume``: when Docker restarts it (a crash, an engine restart) it comes back
with the routes it had. The server adopts a running proxy at start and only reconfigures it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from dockyard.adapters.dataplane import Component, DataPlane
from dockyard.adapters.local_http import Answer, HttpError, LocalHttp
from dockyard.domain.errors import Unavailable
from dockyard.domain.model import Route

SERVER = "dockyard"
ROLE = "proxy"


class CaddyProxy:
    def __init__(self, root: Path, listen_host: str, port: int, route_prefix: str, plane: DataPlane,
                 image: str = "caddy:2", binary: str = "caddy") -> None:
        self.root = root
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
        """Adopt the running proxy, or start one; then make its listener what the settings say."""
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "caddy.json").write_text(json.dumps(self._initial_config(), indent=2))
        if not self.plane.running(ROLE) and self.socket.exists():
            self.socket.unlink()  # left by a proxy that is gone
        adopted = self.plane.ensure(self.component()) and self._answers()
        deadline = time.monotonic() + 30
        while not self._answers():
            failure = self.plane.failure(ROLE)
            if failure or time.monotonic() > deadline:
                raise Unavailable(
                    f"the proxy (caddy) did not start on {self.listen}: {failure or 'no answer'} "
                    f"(docker logs {self.plane.container_name(ROLE)})",
                    "is the port taken? set DOCKYARD_PROXY_PORT to a free port",
                )
            time.sleep(0.05)
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
        """Stop and remove the proxy's container (`dockyard server down`)."""
        return self.plane.remove(ROLE)

    @staticmethod
    def _route_json(route: Route) -> dict[str, Any]:
        return {
            "@id": route.id,
            "match": [{"host": list(route.hosts)}],
            "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": u} for u in route.upstreams]}],
            "terminal": True,
        }

    def _call(self, method: str, path: str, body: Any = None) -> Answer:
        try:
            return self._http.request(method, path, body)
        except HttpError as exc:
            raise Unavailable(f"the proxy's admin API does not answer: {exc}",
                              f"check its container: docker logs {self.plane.container_name(ROLE)}") from None

    def set_route(self, route: Route) -> None:
        body = self._route_json(route)
        r = self._call("PATCH", f"/id/{route.id}", body)
        if r.status_code == 404 or (r.status_code >= 400 and "unknown object ID" in r.text):
            r = self._call("PUT", f"/config/apps/http/servers/{SERVER}/routes/0", body)
        if r.status_code >= 400:
            raise Unavailable(f"the proxy refused route {route.id}: {r.text[:300]}")

    def remove_route(self, route_id: str) -> None:
        r = self._call("DELETE", f"/id/{route_id}")
        if r.status_code >= 400 and r.status_code != 404 and "unknown object ID" not in r.text:
            raise Unavailable(f"the proxy refused to remove route {route_id}: {r.text[:300]}")

    def routes(self) -> list[Route]:
        r = self._call("GET", f"/config/apps/http/servers/{SERVER}/routes")
        out = []
        for raw in r.json() or []:
            rid = raw.get("@id", "")
            if not rid.startswith(self.route_prefix) or rid.endswith("-fallback"):
                continue
            hosts = tuple(h for m in raw.get("match", []) for h in m.get("host", []))
            ups = tuple(u["dial"] for h in raw.get("handle", []) for u in h.get("upstreams", []))
            out.append(Route(id=rid, hosts=hosts, upstreams=ups))
        return out
