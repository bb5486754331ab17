"""A small JSON-over-HTTP client for the local parts dockyard talks to (the proxy's admin API on
a unix socket, the registry on loopback), on the standard library: the server keeps no HTTP
client library in memory for the few calls it makes."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class HttpError(Exception):
    """The peer could not be reached, or broke off."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class LocalHttp:
    """One connection per call: these peers are local, and calls come from several threads."""

    def __init__(self, host: str = "", port: int = 0, unix_socket: str = "", host_header: str = "",
                 timeout: float = 10.0, auth: tuple[str, str] | None = None) -> None:
        self.host, self.port, self.unix_socket = host, port, unix_socket
        self.host_header = host_header or host or "localhost"
        self.timeout = timeout
        self.auth = auth

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                timeout: float | None = None) -> Answer:
        conn: http.client.HTTPConnection
        wait = timeout or self.timeout
        if self.unix_socket:
            conn = _UnixConnection(self.unix_socket, wait)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=wait)
        sent = {"Host": self.host_header, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if self.auth:
            sent["Authorization"] = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        except (OSError, http.client.HTTPException) as exc:
            raise HttpError(f"{method} {path}: {exc}") from None
        finally:
            conn.close()

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float | None = None) -> Answer:
        return self.request("GET", path, headers=headers, timeout=timeout)


def proxy_smoke_check(port: int, timeout: float = 5.0) -> Callable[[str, str], str]:
    """A promotion's smoke check (services/promotion.py): GET ``path`` at ``host`` through the
    proxy on this machine's ``port``; "" when it answered 2xx or 3xx, else what it answered."""

    def check(host: str, path: str) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host, "User-Agent": "dockyard-smoke-check"})
            response = conn.getresponse()
            response.read(64 * 1024)  # the start of the body only: an answer is all it asks
            return "" if 200 <= response.status < 400 else f"last: HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            return f"last: no answer ({exc or type(exc).__name__})"
        finally:
            conn.close()

    return check
