"""A named volume's files as a tar stream, out of the volume and back into it, on one Docker host
(services/backups.py writes and checks the archives).

A short-lived helper container mounts the volume (read-only to export) and runs busybox's
``tar``: the official ``busybox`` image, or one built from the host's own busybox where it cannot
be pulled (adapters/dataplane.py). Its output is read as the engine multiplexes it, its input
written as it is read; it runs without a network, and is always removed. An import empties the
volume first: the volume holds the archive's files and nothing else.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from dockyard.adapters.dataplane import Component, DataPlane
from dockyard.adapters.docker_client import attached_socket, explain, frames, labels
from dockyard.domain.errors import DockyardError, Unavailable

TOOLS = Component(role="volume-tools", image="busybox:1.36", binary="busybox", entrypoint="/bin/busybox", args=())
BUSYBOX = TOOLS.entrypoint
# the volume emptied (hidden files too: a glob that matches nothing is a name rm -f ignores), then the tar unpacked
_EMPTY_THEN_UNPACK = f"cd /v && {BUSYBOX} rm -rf ./* ./.[!.]* ./..?* && {BUSYBOX} tar -xf -"


class DockerVolumeArchives:
    def __init__(self, client: Any, installation: str, prefix: str, plane: DataPlane,
                 volume_name: Callable[[str, str, str], str]) -> None:
        self.api = client.api
        self.installation, self.prefix = installation, prefix
        self.plane, self.volume_name = plane, volume_name

    def export(self, app: str, environment: str, volume: str, write: Callable[[bytes], object]) -> None:
        """The volume's files, as a tar stream, handed to ``write``."""
        self._run(app, environment, volume, [BUSYBOX, "tar", "-C", "/v", "-cf", "-", "."], True, None, write)

    def import_(self, app: str, environment: str, volume: str, read: Callable[[int], bytes]) -> None:
        """Replace the volume's files with those of the tar stream ``read`` gives."""
        self._run(app, environment, volume, [BUSYBOX, "sh", "-c", _EMPTY_THEN_UNPACK], False, read, lambda data: None)

    def _run(self, app: str, environment: str, volume: str, argv: list[str], read_only: bool,
             stdin: Callable[[int], bytes] | None, stdout: Callable[[bytes], object]) -> None:
        name = self.volume_name(app, environment, volume)
        try:
            self.api.inspect_volume(name)
        except docker.errors.NotFound:
            raise DockyardError(f"{app} has no volume {volume!r} in {environment}",
                                f"list them: dockyard volumes list {app} --env {environment}") from None
        image = self.plane.image_for(TOOLS)
        host_config = self.api.create_host_config(
            network_mode="none", security_opt=["no-new-privileges:true"],
            mounts=[docker.types.Mount("/v", name, type="volume", read_only=read_only)])
        try:
            created = self.api.create_container(
                image, name=f"{self.prefix}-{self.installation}-volume-tools-{secrets.token_hex(3)}",
                entrypoint=[argv[0]], command=argv[1:], host_config=host_config, stdin_open=stdin is not None,
                # a one-off: never one of the environment's tasks (a release would stop it)
                labels=labels(self.installation, role=TOOLS.role, oneoff=TOOLS.role, app=app, environment=environment))
        except docker.errors.APIError as exc:
            raise Unavailable(f"cannot start the volume tools: {explain(exc)}") from None
        errors = bytearray()
        try:
            attached = self.api.attach_socket(created["Id"], params={
                "stdin": 1 if stdin is not None else 0, "stdout": 1, "stderr": 1, "stream": 1})
            sock = attached_socket(attached)  # a large volume's tar may pause longer than the client's timeout
            try:
                self.api.start(created["Id"])
                if stdin is not None:
                    threading.Thread(target=_feed, args=(sock, stdin), daemon=True, name="volume-import").start()
                for kind, data in frames(sock):
                    (errors.extend if kind == 2 else stdout)(data)
                code = int(self.api.wait(created["Id"])["StatusCode"])
            finally:
                with contextlib.suppress(OSError):
                    attached.close()
        except docker.errors.APIError as exc:
            raise Unavailable(f"the volume tools failed: {explain(exc)}") from None
        finally:
            with contextlib.suppress(docker.errors.APIError):
                self.api.remove_container(created["Id"], force=True)
        if code != 0:
            raise DockyardError(f"tar {'read' if read_only else 'wrote'} volume {volume!r} with exit code {code}: "
                                f"{errors.decode(errors='replace').strip()[-500:]}")


def _feed(sock: socket.socket, read: Callable[[int], bytes]) -> None:
    with contextlib.suppress(OSError):
        while chunk := read(1024 * 1024):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
