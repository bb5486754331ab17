"""The data plane: the proxy and the registry run as labelled Docker containers with a restart
policy, so they keep serving when ``dockyard server`` is killed, stopped, restarted or upgraded.

At start the server adopts the containers that run already (same labels, same configuration)
and only reconfigures them; it recreates one only when its configuration changed. A real install
runs the official images (``caddy:2``, ``registry:2``); where they cannot be pulled (an offline
machine), dockyard builds a small image from the host's own binary (Debian's ``caddy`` and
``docker-registry``) instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from dockyard.adapters.docker_client import LABEL, explain, labels
from dockyard.domain.errors import Unavailable

log = logging.getLogger(__name__)
Say = Callable[[str], None]


@dataclass(frozen=True)
class Component:
    """One long-running part of the data plane, as a container on the host's network."""

    role: str  # "proxy" or "registry"
    image: str  # what a real install pulls: "caddy:2", "registry:2"
    binary: str  # the host binary an offline machine builds a local image from
    entrypoint: str  # where the binary is inside the image (as in the official image)
    args: tuple[str, ...]
    mounts: tuple[Path, ...] = ()  # host folders, mounted at the same path
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)


class DataPlane:
    """Creates, adopts and removes the data plane's containers on one Docker engine."""

    def __init__(self, client: Any, installation: str, prefix: str, say: Say | None = None) -> None:
        self.api = client.api
        self.installation = installation
        self.prefix = prefix
        self.say = say or log.info

    def container_name(self, role: str) -> str:
        return f"{self.prefix}-{self.installation}-{role}"

    def find(self, role: str) -> dict[str, Any] | None:
        """The container of ``role`` of this installation, inspected, or None."""
        found = self.api.containers(all=True, filters={"label": [f"{LABEL}.installation={self.installation}",
                                                                  f"{LABEL}.role={role}"]})
        for summary in found:
            try:
                return dict(self.api.inspect_container(summary["Id"]))
            except docker.errors.NotFound:
                continue
        return None

    def running(self, role: str) -> bool:
        info = self.find(role)
        return bool(info and info["State"]["Running"] and not info["State"].get("Restarting"))

    def ensure(self, component: Component) -> bool:
        """Make the component's container run with this configuration. True when a running
        container was adopted as it was (nothing restarted)."""
        image = self.image_for(component)
        config = self._config(component, image)
        info = self.find(component.role)
        if info is not None and (info["Config"]["Labels"] or {}).get(f"{LABEL}.config") == config:
            if info["State"]["Running"]:
                return True
            self.api.start(info["Id"])
            return False
        if info is not None:
            self.say(f"{component.role}: its configuration changed; replacing its container")
            self.api.remove_container(info["Id"], force=True)
        self._create(component, image, config)
        return False

    def remove(self, role: str) -> bool:
        info = self.find(role)
        if info is None:
            return False
        self.api.stop(info["Id"], timeout=10)
        self.api.remove_container(info["Id"], force=True)
        return True

    def failure(self, role: str) -> str | None:
        """When the role's container has stopped or keeps restarting: its last output."""
        info = self.find(role)
        if info is None:
            return "its container is gone"
        state = info["State"]
        if state["Running"] and not state.get("Restarting") and not info.get("RestartCount"):
            return None
        try:
            tail = bytes(self.api.logs(info["Id"], tail=10)).decode(errors="replace").strip()
        except docker.errors.APIError:
            tail = ""
        return f"it stopped (exit code {state.get('ExitCode')}): {tail[-800:]}"

    def await_answer(self, role: str, answers: Callable[[], bool], what: str, hint: str,
                     timeout: float = 30.0) -> None:
        """Wait until the role's container ``answers()``; Unavailable("``what`` did not start:
        why", ``hint``) when it stopped or did not answer within ``timeout``."""
        import time

        deadline = time.monotonic() + timeout
        while not answers():
            failure = self.failure(role)
            if failure or time.monotonic() > deadline:
                raise Unavailable(f"{what} did not start: {failure or 'no answer'} "
                                  f"(docker logs {self.container_name(role)})", hint)
            time.sleep(0.05)

    def pid(self, role: str) -> int:
        info = self.find(role)
        return int(info["State"]["Pid"]) if info else 0

    def run(self, role: str, argv: list[str]) -> tuple[int, str]:
        """Run a command in the role's running container (as the server's user); its exit code and
        output. Unavailable when the container does not run."""
        info = self.find(role)
        if info is None or not info["State"]["Running"]:
            raise Unavailable(f"the {role} does not run, so {argv[0]} cannot run in it",
                              "start it: restart `dockyard server`")
        try:
            created = self.api.exec_create(info["Id"], argv, user=_user(), stdout=True, stderr=True)
            out = b"".join(self.api.exec_start(created["Id"], stream=True))
            code = self.api.exec_inspect(created["Id"]).get("ExitCode")
        except docker.errors.APIError as exc:
            raise Unavailable(f"{argv[0]} could not run in the {role}: {explain(exc)}") from None
        return int(code if code is not None else -1), out.decode(errors="replace")

    # -- images ---------------------------------------------------------------------------
    def image_for(self, component: Component) -> str:
        """The id of the image to run: the configured one, pulled if needed, else one built
        from the host's binary."""
        reason = "no image is published for it"  # (the resolver: always the host's dnsmasq)
        if component.image:
            with contextlib.suppress(docker.errors.NotFound):
                return str(self.api.inspect_image(component.image)["Id"])
            try:
                self.say(f"{component.role}: pulling {component.image}")
                self.api.pull(component.image)
                return str(self.api.inspect_image(component.image)["Id"])
            except docker.errors.APIError as exc:
                reason = explain(exc).splitlines()[0][:200]
        binary = shutil.which(component.binary)
        if binary is None:
            raise Unavailable(
                f"cannot run the {component.role}: {component.image or 'its image'} cannot be pulled ({reason}) and "
                f"{component.binary} is not installed to build a local image from",
                f"let the Docker engine reach Docker Hub, or install {component.binary} (scripts/setup.sh does)",
            )
        digest = hashlib.sha256(Path(binary).read_bytes()).hexdigest()[:12]
        tag = f"dockyard/{component.role}:local-{digest}"
        with contextlib.suppress(docker.errors.NotFound):
            return str(self.api.inspect_image(tag)["Id"])
        self.say(f"{component.role}: {component.image or 'its image'} cannot be pulled ({reason}); building {tag} "
                 f"from {binary}")
        return self._build_from_binary(binary, component.entrypoint, tag)

    def _build_from_binary(self, binary: str, target: str, tag: str) -> str:
        buf = io.BytesIO()
        dockerfile = b"FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin\n"
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(dockerfile)
            tar.addfile(info, io.BytesIO(dockerfile))
            tar.add(binary, arcname=f"rootfs{target}")
            for lib in _shared_libraries(binary):
                tar.add(os.path.realpath(lib), arcname=f"rootfs{lib}")
            for folder in ("tmp", "etc"):
                info = tarfile.TarInfo(f"rootfs/{folder}")
                info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
                tar.addfile(info)
        buf.seek(0)
        image_id = ""
        for chunk in self.api.build(fileobj=buf, custom_context=True, tag=tag, rm=True, decode=True,
                                    labels={f"{LABEL}.role": "data-plane-image"}):
            if "error" in chunk:
                raise Unavailable(f"cannot build {tag}: {chunk['error']}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = aux["ID"]
        return image_id or str(self.api.inspect_image(tag)["Id"])

    # -- containers -----------------------------------------------------------------------
    def _config(self, component: Component, image: str) -> str:
        text = json.dumps([image, component.entrypoint, component.args, [str(m) for m in component.mounts],
                           component.env, _user()])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _create(self, component: Component, image: str, config: str) -> None:
        for mount in component.mounts:
            mount.mkdir(parents=True, exist_ok=True)
        host_config = self.api.create_host_config(
            network_mode="host",
            restart_policy={"Name": "unless-stopped"},
            binds={str(m): {"bind": str(m), "mode": "rw"} for m in component.mounts},
            read_only=True,
            tmpfs={"/tmp": "rw,size=64m"},  # noqa: S108 - the container's own /tmp
            security_opt=["no-new-privileges:true"],
            log_config=docker.types.LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"}),
        )
        name = self.container_name(component.role)
        with contextlib.suppress(docker.errors.NotFound):
            self.api.remove_container(name, force=True)  # a leftover without our labels' config
        created = self.api.create_container(
            image, name=name, entrypoint=[component.entrypoint], command=list(component.args),
            environment=dict(component.env), user=_user(), host_config=host_config,
            labels=labels(self.installation, role=component.role, config=config),
        )
        self.api.start(created["Id"])


def _user() -> str:
    return f"{os.getuid()}:{os.getgid()}"


def _shared_libraries(binary: str) -> list[str]:
    """What the dynamic loader needs to start ``binary`` (none for a static binary)."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted({m.group(1) for m in re.finditer(r"(/\S+) \(0x", out)})
