"""The reverse proxy: Debian's Caddy, started by dockyard and configured through its admin API
(on a unix socket under DOCKYARD_HOME), never by rewriting files and reloading."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from dockyard.adapters.process import Supervised
from dockyard.domain.errors import Unavailable
from dockyard.domain.model import Route

SERVER = "dockyard"


class CaddyProxy:
    def __init__(self, root: Path, listen_host: str, port: int, route_prefix: str, binary: str = "caddy") -> None:
        self.root = root
        self.listen = f"{listen_host}:{port}"
        self.port = port
        self.route_prefix = route_prefix
        self.binary = binary
        self.socket = root / "admin.sock"
        self.process: Supervised | None = None
        self._http: httpx.Client | None = None
        self.on_restart: list[Callable[[], None]] = []  # e.g. put the routes back

    def _client(self) -> httpx.Client:
        """One client for the adapter's life: making an httpx client costs tens of milliseconds."""
        if self._http is None:
            self._http = httpx.Client(
                transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://caddy", timeout=10
            )
        return self._http

    def _initial_config(self) -> dict[str, Any]:
        return {
            "admin": {"listen": f"unix/{self.socket}", "origins": ["caddy"]},
            "apps": {
                "http": {
                    "servers": {
                        SERVER: {
                            "listen": [self.listen],
                            "automatic_https": {"disable": True},
                            "routes": [
                                {
                                    "@id": f"{self.route_prefix}-fallback",
                                    "handle": [
                                        {
                                            "handler": "static_response",
                                            "status_code": 404,
                                            "body": "dockyard: no app answers at this host\n",
                                        }
                                    ],
                                }
                            ],
                        }
                    }
                }
            },
        }

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return self._client().get("/config/").status_code == 200
        except httpx.HTTPError:
            return False

    def ensure_running(self) -> None:
        if self.process and self.process.running and self._answers():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        config = self.root / "caddy.json"
        config.write_text(json.dumps(self._initial_config(), indent=2))
        env = {"XDG_DATA_HOME": str(self.root / "data"), "XDG_CONFIG_HOME": str(self.root / "config")}
        self.process = Supervised(
            "proxy", [self.binary, "run", "--config", str(config)], self.root / "caddy.log", env=env,
            on_restart=self._restarted,
        )
        self.process.start()
        deadline = time.monotonic() + 20
        while not self._answers():
            if time.monotonic() > deadline or not self.process.running:
                raise Unavailable(
                    f"the proxy (caddy) did not start on {self.listen}: {self.process.recent_output()[-800:]}",
                    "is the port taken? set DOCKYARD_PROXY_PORT to a free port",
                )
            time.sleep(0.1)

    def _restarted(self) -> None:
        deadline = time.monotonic() + 20
        while not self._answers() and time.monotonic() < deadline:
            time.sleep(0.1)
        for callback in self.on_restart:
            callback()

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    @staticmethod
    def _route_json(route: Route) -> dict[str, Any]:
        return {
            "@id": route.id,
            "match": [{"host": list(route.hosts)}],
            "handle": [
                {
                    "handler": "reverse_proxy",
                    "upstreams": [{"dial": u} for u in route.upstreams],
                }
            ],
            "terminal": True,
        }

    def _call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            return self._client().request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise Unavailable(f"the proxy's admin API does not answer: {exc}", "restart dockyard server") from None

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
