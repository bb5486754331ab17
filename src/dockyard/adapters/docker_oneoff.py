"""One-off containers and commands in running ones, on one Docker host (a mixin of
DockerOrchestrator): ``dockyard run`` and ``dockyard exec`` (services/oneoff.py).

A command run by exec is killed at its deadline (its process, seen from this host). At start, the
server removes the one-off containers a server that stopped left (``clear_oneoffs``).

A one-off container is made as a container of its service is (``container_args``: the app
environment's network, volumes, limits, variables and secrets), without a restart policy,
published ports, health check or names on the network, and labelled ``dockyard.oneoff`` (so that
``observe`` never takes it for one of the service's tasks). It is attached before it starts: its
input is written, then closed; its output is read as the engine multiplexes it (a TTY's comes
as it is), and handed over as it comes. Past its deadline it is killed. It is always removed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

import docker

from dockyard.adapters.docker_client import LABEL, attached_socket, explain, frames, labels, read_exactly
from dockyard.domain.errors import DeployFailed, DockyardError
from dockyard.domain.model import DEFAULT_ENVIRONMENT, OneOffResult, RunningService, ServiceSpec

ONEOFF_LABEL = f"{LABEL}.oneoff"
Output = Callable[[str, bytes], None]  # ("stdout" or "stderr", bytes)
Input = Callable[[], bytes]  # the next bytes of input, b"" at its end
_STREAMS = {1: "stdout", 2: "stderr"}


class OneOffContainers:
    api: Any
    installation: str
    prefix: str
    container_args: Callable[..., tuple[str, dict[str, Any]]]  # DockerOrchestrator's

    def run_once(self, app: str, environment: str, service: ServiceSpec, command: Sequence[str], *, job: int,
                 stdin: bytes | Input | None, tty: bool, output: Output, timeout: float,
                 size: tuple[int, int] | None = None) -> OneOffResult:
        scope = app if environment == DEFAULT_ENVIRONMENT else f"{app}--{environment}"
        name = f"{self.prefix}-{self.installation}-{scope}-run-{service.name}-{job}-{secrets.token_hex(2)}"
        container_labels = labels(self.installation, app=app, environment=environment, oneoff=str(job))
        image, args = self.container_args(app, environment, service, 0, container_labels, routed=False)
        args.update(command=list(command), stdin_open=stdin is not None, tty=tty)
        try:
            try:
                created = self.api.create_container(image, name=name, **args)
            except docker.errors.ImageNotFound:  # pinned by digest in dockyard's registry: pulled, as a start does
                self.api.pull(image)
                created = self.api.create_container(image, name=name, **args)
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot create a one-off container of {service.name}: {explain(exc)}") from None
        cid = created["Id"]
        try:
            attached = self.api.attach_socket(cid, params={"stdin": 1 if stdin is not None else 0, "stdout": 1,
                                                           "stderr": 1, "stream": 1})
            try:
                self.api.start(cid)
                if tty and size:
                    with contextlib.suppress(docker.errors.APIError):
                        self.api.resize(cid, height=size[0], width=size[1])
                killed = self._deadline(timeout, lambda: self.api.kill(cid))
                _pump(attached_socket(attached), stdin, tty, output)
                code = int(self.api.wait(cid)["StatusCode"])
                killed.cancel()
            finally:
                with contextlib.suppress(OSError):
                    attached.close()
            return OneOffResult(code, killed.fired)
        except docker.errors.APIError as exc:
            raise DeployFailed(f"the one-off container of {service.name} failed: {explain(exc)}") from None
        finally:
            with contextlib.suppress(docker.errors.APIError, DockyardError):
                self.api.remove_container(cid, force=True)

    def exec_in(self, task: RunningService, command: Sequence[str], *, stdin: bytes | Input | None, tty: bool,
                output: Output, timeout: float, size: tuple[int, int] | None = None) -> OneOffResult:
        try:
            made = self.api.exec_create(task.id, list(command), stdin=stdin is not None, tty=tty)
            attached = self.api.exec_start(made["Id"], socket=True, tty=tty)
            if tty and size:
                with contextlib.suppress(docker.errors.APIError):
                    self.api.exec_resize(made["Id"], height=size[0], width=size[1])
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot run a command in {task.service}: {explain(exc)}") from None
        raw = attached_socket(attached)

        def stop() -> None:  # the command killed (its process on this host), and the stream cut
            with contextlib.suppress(Exception):
                pid = int(self.api.exec_inspect(made["Id"]).get("Pid") or 0)
                if pid > 1:
                    os.kill(pid, signal.SIGKILL)
            raw.shutdown(socket.SHUT_RDWR)

        late = self._deadline(timeout, stop)
        try:
            _pump(raw, stdin, tty, output)
        finally:
            late.cancel()
            with contextlib.suppress(OSError):
                attached.close()
        found = self.api.exec_inspect(made["Id"])
        code = found.get("ExitCode")
        return OneOffResult(int(code) if code is not None and not found.get("Running") else None, late.fired)

    def clear_oneoffs(self) -> int:
        """Remove the one-off containers (and volume tools) a server that stopped left behind."""
        found = self.api.containers(all=True, filters={"label": [f"{LABEL}.installation={self.installation}",
                                                                 ONEOFF_LABEL]})
        for summary in found:
            with contextlib.suppress(docker.errors.APIError):
                self.api.remove_container(summary["Id"], force=True)
        return len(found)

    @staticmethod
    def _deadline(seconds: float, act: Callable[[], None]) -> _Deadline:
        deadline = _Deadline(seconds, act)
        deadline.start()
        return deadline


class _Deadline(threading.Thread):
    """Calls ``act`` once ``seconds`` passed, unless cancelled first."""

    def __init__(self, seconds: float, act: Callable[[], None]) -> None:
        super().__init__(daemon=True, name="oneoff-deadline")
        self.seconds, self.act = seconds, act
        self.fired = False
        self._cancelled = threading.Event()

    def run(self) -> None:
        if not self._cancelled.wait(self.seconds):
            self.fired = True
            with contextlib.suppress(Exception):
                self.act()

    def cancel(self) -> None:
        self._cancelled.set()


def _pump(sock: socket.socket, stdin: bytes | Input | None, tty: bool, output: Output) -> None:
    """Write ``stdin`` as it comes (then close the container's input), and hand over its output
    until it ends."""
    if stdin is not None:
        def write() -> None:
            with contextlib.suppress(OSError):
                if isinstance(stdin, bytes):
                    sock.sendall(stdin)
                else:
                    while chunk := stdin():
                        sock.sendall(chunk)
                sock.shutdown(socket.SHUT_WR)
        threading.Thread(target=write, daemon=True, name="oneoff-stdin").start()
    if tty:
        while chunk := read_exactly(sock, 1):
            output("stdout", chunk + _available(sock))
        return
    for kind, body in frames(sock):
        output(_STREAMS.get(kind, "stdout"), body)


def _available(sock: socket.socket) -> bytes:
    """What else a TTY's stream holds now, without waiting."""
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT)
    except OSError:
        return b""
