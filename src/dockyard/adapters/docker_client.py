"""The connection to a Docker engine and the labels everything dockyard creates there carries."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions

from dockyard.domain.errors import Unavailable

LABEL = "dockyard"
ENGINE_PATIENCE = 60.0  # seconds a step waits for an engine that stopped answering (a restart) to come back
T = TypeVar("T")


def connect(base_url: str = "") -> Any:
    """A Docker SDK client that answers, or a clear error."""
    try:
        client = docker.DockerClient(base_url=base_url) if base_url else docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise Unavailable(
            f"the Docker engine does not answer ({exc})",
            "start it (dockerd, or `bash scripts/install.sh`) or set DOCKYARD_DOCKER_HOST",
        ) from None
    return client


def labels(installation: str, **extra: str) -> dict[str, str]:
    """``dockyard.installation`` plus ``dockyard.<key>`` for each extra."""
    out = {f"{LABEL}.installation": installation}
    out.update({f"{LABEL}.{k}": v for k, v in extra.items()})
    return out


def explain(exc: Exception) -> str:
    """The engine's own words for an API error."""
    return str(getattr(exc, "explanation", None) or exc)


def unreachable(exc: BaseException) -> bool:
    """The engine did not answer (it is stopping, restarting or gone), as opposed to refusing."""
    return isinstance(exc, requests.exceptions.ConnectionError)


def patiently(call: Callable[[], T], seconds: float = ENGINE_PATIENCE, what: str = "") -> T:
    """``call()``, tried again while the engine does not answer (an engine restart: with
    live-restore its containers go on meanwhile), for up to ``seconds``; then Unavailable."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except requests.exceptions.ConnectionError as exc:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    f"the Docker engine did not answer for {seconds:.0f}s{f' ({what})' if what else ''}: {exc}",
                    "start it again (systemctl start docker, or dockerd); dockyard goes on once it answers",
                ) from None
            time.sleep(0.25)


def each(items: Iterable[T], call: Callable[[T], object]) -> None:
    """``call`` on every item, even after one failed; the first failure is raised at the end."""
    failure: Exception | None = None
    for item in items:
        try:
            call(item)
        except Exception as exc:  # the others are tried all the same
            failure = failure or exc
    if failure is not None:
        raise failure


def attached_socket(attached: Any) -> socket.socket:
    """The socket under what the SDK's attach (or exec start) gives, a SocketIO or the socket
    itself, without the client's timeout: a command may say nothing for longer (its own deadline
    stops it)."""
    found: socket.socket = getattr(attached, "_sock", attached)
    found.settimeout(None)
    return found


def frames(sock: socket.socket) -> Iterator[tuple[int, bytes]]:
    """An attached container's output as the engine multiplexes it (no TTY): (stream, bytes), 1 for
    stdout and 2 for stderr, until it ends."""
    while True:
        header = read_exactly(sock, 8)
        if len(header) < 8:
            return
        size = struct.unpack(">I", header[4:])[0]
        body = read_exactly(sock, size)
        if body:
            yield header[0], body
        if len(body) < size:
            return


def read_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes, or fewer when the stream ends (or breaks) first."""
    out = bytearray()
    while len(out) < size:
        try:
            chunk = sock.recv(min(size - len(out), 1024 * 1024))
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)
