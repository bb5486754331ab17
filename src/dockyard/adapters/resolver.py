"""Host names to addresses, as this host's resolver answers (the Docker engine resolves the same
way when a build fetches an ``ADD <url>``)."""

from __future__ import annotations

import socket


def addresses(host: str) -> list[str]:
    """Every address ``host`` resolves to here; none when it does not resolve (the build will
    then fail on its own, with the engine's message)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})
