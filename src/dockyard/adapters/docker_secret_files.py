"""Secret files for containers on one Docker host (the SecretFiles port): a Docker volume per
set of secret versions, mounted read-only at /run/secrets.

The volume is filled before any container that mounts it starts, through a helper container
that is created and never started (``put_archive`` into its mount); each file is owned by root
with mode 0400. The files live in the engine's volume storage (``/var/lib/docker/volumes``,
root's only), never under DOCKYARD_HOME, and stay through restarts of the container or of the
engine. The volume is named by the versions it holds: the same versions, the same mount, so an
unchanged service keeps its container. Volumes carry dockyard's labels; ``prune`` removes those
no container uses.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors

from dockyard.adapters.docker_client import LABEL, explain, labels
from dockyard.domain.configuration import SECRETS_DIR, versions_digest
from dockyard.domain.errors import DeployFailed

HELPER_IMAGE = "dockyard/secrets-helper:1"  # an empty image: its containers are never started


class DockerSecretVolumes:
    def __init__(self, client: Any, installation: str, prefix: str) -> None:
        self.api = client.api
        self.installation = installation
        self.prefix = prefix

    def volume_name(self, app: str, environment: str, secrets: Sequence[tuple[str, int]]) -> str:
        return f"{self.prefix}-{self.installation}-{app}-{environment}-secrets-{versions_digest(secrets)}"

    def mount(self, app: str, environment: str, secrets: Sequence[tuple[str, int]]) -> str:
        return f"{self.volume_name(app, environment, secrets)}:{SECRETS_DIR}:ro"

    def write(self, app: str, environment: str, secrets: Sequence[tuple[str, int]],
              files: Mapping[str, bytes]) -> None:
        volume = self.volume_name(app, environment, secrets)
        try:
            self.api.create_volume(volume, labels=labels(self.installation, app=app, environment=environment,
                                                         role="secrets"))
            helper = self.api.create_container(
                self._helper_image(), command=["none"], network_disabled=True,
                labels=labels(self.installation, role="secrets-helper"),
                host_config=self.api.create_host_config(binds=[f"{volume}:{SECRETS_DIR}:rw"]),
            )
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot prepare the secret files of {app}: {explain(exc)}") from None
        try:
            if not self.api.put_archive(helper["Id"], SECRETS_DIR, _tar(files)):
                raise DeployFailed(f"cannot write the secret files of {app}: the engine refused the archive")
        except docker.errors.APIError as exc:
            raise DeployFailed(f"cannot write the secret files of {app}: {explain(exc)}") from None
        finally:
            try:
                self.api.remove_container(helper["Id"], force=True)
            except docker.errors.APIError:
                pass  # labelled: a sweep finds it

    def prune(self, app: str) -> None:
        filters = {"label": [f"{LABEL}.installation={self.installation}", f"{LABEL}.app={app}",
                             f"{LABEL}.role=secrets"]}
        for volume in (self.api.volumes(filters=filters) or {}).get("Volumes") or []:
            try:
                self.api.remove_volume(volume["Name"])
            except docker.errors.APIError:
                continue  # a container uses it still (a running one, or one the restart policy brings back)

    def _helper_image(self) -> str:
        try:
            self.api.inspect_image(HELPER_IMAGE)
        except docker.errors.ImageNotFound:
            repository, _, tag = HELPER_IMAGE.rpartition(":")
            self.api.import_image_from_data(_tar({}), repository=repository, tag=tag,
                                            changes=[f"LABEL {LABEL}.role=secrets-helper"])
        return HELPER_IMAGE


def _tar(files: Mapping[str, bytes]) -> bytes:
    """The files, owned by root, readable by root only."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), 0o400, 0, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
