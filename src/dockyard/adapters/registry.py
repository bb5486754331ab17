"""dockyard's own image registry: a real CNCF Distribution in a container of the data plane
(adapters/dataplane.py), with htpasswd auth and its storage under DOCKYARD_HOME. It keeps serving
while the server is down; the server adopts it at start."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import secrets
from pathlib import Path

import bcrypt

from dockyard.adapters.dataplane import Component, DataPlane
from dockyard.adapters.local_http import HttpError, LocalHttp
from dockyard.domain.errors import Unavailable
from dockyard.domain.retention import Swept

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)
USER = "dockyard"
ROLE = "registry"


class DistributionRegistry:
    def __init__(self, root: Path, host: str, port: int, plane: DataPlane, image: str = "registry:2",
                 binary: str = "docker-registry") -> None:
        self.root = root
        self.host = host
        self.port = port
        self.plane = plane
        self.image = image
        self.binary = binary
        self._http = LocalHttp(host, port)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _secret(self, name: str) -> str:
        path = self.root / name
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    @functools.cached_property
    def password(self) -> str:
        """Read once: every tag lookup of every build sends it."""
        return self._secret("password")

    @property
    def auth(self) -> dict[str, str]:
        return {"username": USER, "password": self.password, "serveraddress": self.address}

    def _write_config(self) -> Path:
        """The registry's files; unchanged files are not rewritten, so a running registry is adopted."""
        self.root.mkdir(parents=True, exist_ok=True)
        htpasswd = self.root / "htpasswd"
        try:
            current = htpasswd.read_text().strip().partition(":")[2].encode()
            valid = bcrypt.checkpw(self.password.encode(), current)
        except (OSError, ValueError):
            valid = False
        if not valid:
            # The password is a random 192-bit secret, so bcrypt's cost adds nothing but latency to
            # every registry request: use the minimum.
            hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
            htpasswd.write_text(f"{USER}:{hashed}\n")
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.root / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.address, "secret": self._secret("http-secret")},
            "auth": {"htpasswd": {"realm": "dockyard", "path": str(htpasswd)}},
        }
        path = self.root / "config.yml"
        text = json.dumps(config, indent=2)  # JSON is YAML
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        return path

    def component(self, config: Path) -> Component:
        return Component(role=ROLE, image=self.image, binary=self.binary, entrypoint="/bin/registry",
                         args=("serve", str(config)), mounts=(self.root,),
                         env=(("CONFIG_HASH", _digest(config)),))

    def _answers(self) -> bool:
        try:
            r = self._http.get("/v2/", timeout=1)
        except HttpError:
            return False
        return r.status_code in (200, 401)

    @property
    def running(self) -> bool:
        return self.plane.running(ROLE)

    def ensure_running(self) -> None:
        """Adopt the running registry, or start one."""
        config = self._write_config()
        if self.plane.find(ROLE) is None and self._answers():
            raise Unavailable(
                f"something already answers at {self.address}, so dockyard cannot start its registry there",
                "stop it, or set DOCKYARD_REGISTRY_PORT to a free port",
            )
        self.plane.ensure(self.component(config))
        self.plane.await_answer(ROLE, self._answers, f"the registry at {self.address}",
                                "is the port taken? set DOCKYARD_REGISTRY_PORT to a free port")

    def stop(self) -> None:
        """The registry outlives the server: nothing to do when the server stops."""

    def remove(self) -> bool:
        """Stop and remove the registry's container (`dockyard server down`)."""
        return self.plane.remove(ROLE)

    def config_digest(self, repository: str, tag: str) -> str | None:
        try:
            r = LocalHttp(self.host, self.port, auth=(USER, self.password)).get(
                f"/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}
            )
        except HttpError as exc:
            raise Unavailable(f"the registry at {self.address} does not answer: {exc}") from None
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise Unavailable(f"the registry answered {r.status_code} for {repository}:{tag}: {r.text[:200]}")
        config = r.json().get("config", {})
        return str(config["digest"]) if "digest" in config else None

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """DELETE /v2/REPOSITORY/manifests/DIGEST (its storage's delete is enabled): Distribution
        removes the tags bound to it too."""
        try:
            r = LocalHttp(self.host, self.port, auth=(USER, self.password)).request(
                "DELETE", f"/v2/{repository}/manifests/{digest}", headers={"Accept": MANIFEST_TYPES})
        except HttpError as exc:
            raise Unavailable(f"the registry at {self.address} does not answer: {exc}") from None
        if r.status_code == 404:
            return False
        if r.status_code not in (200, 202):
            raise Unavailable(f"the registry answered {r.status_code} to deleting {repository}@{digest}: {r.text[:200]}",
                              "its configuration must enable storage delete; restart `dockyard server` to apply it")
        return True

    def collect_garbage(self) -> Swept:
        """``registry garbage-collect`` in the registry's container, on its own configuration:
        blobs no manifest references go (manifests that lost their tags stay: dockyard deletes
        the ones it collects itself, by digest). Bytes freed: its storage's size before and after."""
        before = _size(self.root / "data")
        code, out = self.plane.run(ROLE, ["/bin/registry", "garbage-collect", str(self.root / "config.yml")])
        if code != 0:
            raise Unavailable(f"the registry's garbage collection failed (exit code {code}): {out.strip()[-800:]}",
                              f"see: docker logs {self.plane.container_name(ROLE)}")
        counted = re.search(r"(\d+) blobs and (\d+) manifests eligible for deletion", out)
        return Swept(blobs=int(counted.group(1)) if counted else None, bytes_freed=max(0, before - _size(self.root / "data")))


def _size(root: Path) -> int:
    """Bytes of the files under ``root``."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(folder) / name).lstat().st_size
    return total


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
