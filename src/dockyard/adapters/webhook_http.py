"""Webhook deliveries POSTed with the standard library's HTTP client: one connection per attempt,
no redirects followed, no proxy taken from the environment, TLS certificates checked."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from dockyard.domain.webhooks import Reply, Unreachable

EXCERPT_BYTES = 1024  # of the answer's body, kept to say why a delivery failed


class HttpWebhookTransport:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._tls = tls

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Reply:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection: http.client.HTTPConnection
        if parts.scheme.lower() == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=self._tls)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            answer = connection.getresponse()
            excerpt = answer.read(EXCERPT_BYTES)
            return Reply(answer.status, excerpt.decode(errors="replace"))
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(_why(exc, timeout)) from None
        finally:
            connection.close()


def _why(exc: Exception, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    return str(exc) or type(exc).__name__
