"""A small client of the Redis protocol (RESP2) over a plain socket, standard library only.

The database stand-in of this example is Redis, reached under the seed's MongoDB names: the
connection settings are the seed's MONGODB_* variables (see ``Settings``).

A copy of ../api/resp.py: in the seed, supervision is a repository of its own.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

Reply = None | int | bytes | list["Reply"]


class RespError(Exception):
    """An error reply of the server (``-ERR ...``)."""


@dataclass(frozen=True)
class Settings:
    """The seed's connection settings, from docker-compose.env."""

    hosts: tuple[tuple[str, int], ...]
    user: str
    password: str
    db: str
    debug: bool

    @classmethod
    def from_environment(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            hosts=parse_hosts(env.get("MONGODB_HOSTS_PORTS", "")),
            user=env.get("MONGODB_USER", ""),
            password=env.get("MONGODB_PASSWORD", ""),
            db=env.get("MONGODB_DB", "") or "crigen",
            debug=env.get("MONGODB_DEBUG", "").strip().lower() in ("1", "true", "yes", "on"),
        )

    @property
    def master(self) -> tuple[str, int]:
        """The first host of MONGODB_HOSTS_PORTS: where writes go."""
        return self.hosts[0]

    @property
    def replicas(self) -> tuple[tuple[str, int], ...]:
        """The other hosts: where reads go (the master when there is no other)."""
        return self.hosts[1:] or self.hosts[:1]


def parse_hosts(text: str) -> tuple[tuple[str, int], ...]:
    """``mongodb:27017,slave1:27017`` -> ((mongodb, 27017), (slave1, 27017)); port 27017 if omitted."""
    hosts = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep:
            host, port = part, "27017"
        hosts.append((host.strip("[]"), int(port)))
    return tuple(hosts) or (("mongodb", 27017),)


def shown(address: tuple[str, int]) -> str:
    return f"{address[0]}:{address[1]}"


class Connection:
    """One connection to one server. Authenticates only if the server asks for it (NOAUTH)."""

    def __init__(self, address: tuple[str, int], settings: Settings, timeout: float = 3.0) -> None:
        self.address = address
        self.settings = settings
        self.sock = socket.create_connection(address, timeout=timeout)
        self.file = self.sock.makefile("rb")
        try:
            self.command("PING")
        except RespError as exc:
            if not str(exc).startswith("NOAUTH"):
                raise
            if not settings.password:
                raise RespError(f"{shown(address)} asks for a password and MONGODB_PASSWORD is empty") from None
            if settings.user:
                self.command("AUTH", settings.user, settings.password)
            else:
                self.command("AUTH", settings.password)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def command(self, *args: str | bytes | int) -> Reply:
        words = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        if self.settings.debug:
            logged = words[:1] if words[0].upper() == b"AUTH" else words
            print(f"resp {shown(self.address)}: {b' '.join(logged).decode(errors='replace')[:200]}", file=sys.stderr)
        payload = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
        self.sock.sendall(payload)
        return self._reply()

    def _line(self) -> bytes:
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"{shown(self.address)} closed the connection")
        return line[:-2]

    def _reply(self) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)
            if len(data) != size + 2:
                raise ConnectionError(f"{shown(self.address)} closed the connection")
            return data[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._reply() for _ in range(count)]
        raise ConnectionError(f"{shown(self.address)} sent an unknown reply {line[:40]!r}")


def parse_info(text: str) -> dict[str, str]:
    """``INFO``'s ``key:value`` lines as a mapping (``# Section`` lines skipped)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            out[key] = value
    return out
