"""The proxy's upstreams by name: a dnsmasq of the data plane answers, for each route, the
addresses of the containers it sends traffic to, read from one hosts file per route.

Why: every change of Caddy's configuration is a reload, and a reload closes the idle keep-alive
connections of every client of every app (a request sent on one at that moment gets no answer)
and cuts short the requests Caddy is retrying on another upstream. A route whose upstreams
come from DNS (Caddy's ``dynamic_upstreams``, refreshed every REFRESH) changes its containers by a
write of its hosts file: no reload. dnsmasq reads the folder with inotify (``--hostsdir``) and
answers at once; Caddy asks again at most REFRESH later, and a request it retries asks again too.

Files are written whole under a dot-name (dnsmasq skips those) and renamed into place. The names
are ``<hash of the route id>.dockyard`` (``--local=/dockyard/``: nothing else is answered, and a
name without a file is NXDOMAIN, never asked upstream). dnsmasq runs as a container of the data
plane with a restart policy, on 127.0.0.1 of the host's network, like the proxy it serves.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import socket
from pathlib import Path

from dockyard.adapters.dataplane import Component, DataPlane

ROLE = "resolver"
DOMAIN = "dockyard"
REFRESH = "50ms"  # how often Caddy asks again: the upper bound of a switch's delay
SETTLED = 0.1  # seconds after a change, past which no new request goes to the containers it removed


class UpstreamNames:
    """Hosts files in ``root``, served by a dnsmasq on 127.0.0.1:``port``."""

    def __init__(self, root: Path, port: int, plane: DataPlane, image: str = "", binary: str = "dnsmasq") -> None:
        self.root = root
        self.port = port
        self.plane = plane
        self.image = image
        self.binary = binary

    @property
    def address(self) -> str:
        """Where Caddy asks (its resolver's address)."""
        return f"udp/127.0.0.1:{self.port}"

    def component(self) -> Component:
        return Component(
            role=ROLE, image=self.image, binary=self.binary, entrypoint="/usr/sbin/dnsmasq",
            args=("--keep-in-foreground", f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                  "--no-resolv", "--no-hosts", f"--local=/{DOMAIN}/", f"--hostsdir={self.root}", "--local-ttl=0",
                  "--no-round-robin",  # one order: the proxy's round-robin then takes every container in turn
                  "--user=", "--log-facility=-", "--pid-file="),
            mounts=(self.root,),
        )

    def ensure_running(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.plane.ensure(self.component())
        self.plane.await_answer(ROLE, self.answers, f"the proxy's resolver (dnsmasq) on 127.0.0.1:{self.port}",
                                "is the port taken? set DOCKYARD_RESOLVER_PORT to a free port")

    def answers(self) -> bool:
        """dnsmasq answers a query for a name it has no file for (NXDOMAIN is an answer)."""
        query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + _qname(f"probe.{DOMAIN}") + b"\x00\x01\x00\x01"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.5)
            try:
                probe.sendto(query, ("127.0.0.1", self.port))
                return probe.recv(512)[:2] == b"\x12\x34"
            except OSError:
                return False

    def remove_component(self) -> bool:
        return self.plane.remove(ROLE)

    @staticmethod
    def name(route_id: str) -> str:
        return f"u{hashlib.sha256(route_id.encode()).hexdigest()[:24]}.{DOMAIN}"

    def _file(self, route_id: str) -> Path:
        return self.root / self.name(route_id).removesuffix(f".{DOMAIN}")

    def set(self, route_id: str, addresses: tuple[str, ...]) -> bool:
        """The route's upstream addresses (IPs, no port), replacing the last; True when they changed."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = self.name(route_id)
        text = "".join(f"{ipaddress.ip_address(a)} {name}\n" for a in addresses)
        final = self._file(route_id)
        with contextlib.suppress(FileNotFoundError):
            if final.read_text() == text:
                return False
        temporary = self.root / f".{final.name}.{os.getpid()}"
        temporary.write_text(text)
        os.replace(temporary, final)
        return True

    def get(self, route_id: str) -> tuple[str, ...] | None:
        """The route's addresses; None when it has no file."""
        try:
            lines = self._file(route_id).read_text().splitlines()
        except FileNotFoundError:
            return None
        return tuple(line.split()[0] for line in lines if line.strip())

    def forget(self, route_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._file(route_id).unlink()


def _qname(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\x00"
