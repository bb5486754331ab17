"""dockyard's own image registry: a real CNCF Distribution (Debian's ``docker-registry``),
started and supervised by the server, with htpasswd auth and storage under DOCKYARD_HOME."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import bcrypt
import httpx

from dockyard.adapters.process import Supervised
from dockyard.domain.errors import Unavailable

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    )
)
USER = "dockyard"


class DistributionRegistry:
    def __init__(self, root: Path, host: str, port: int, binary: str = "docker-registry") -> None:
        self.root = root
        self.host = host
        self.port = port
        self.binary = binary
        self.process: Supervised | None = None
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        """One client for the adapter's life: making an httpx client costs tens of milliseconds."""
        if self._http is None:
            self._http = httpx.Client(base_url=f"http://{self.address}", timeout=10)
        return self._http

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def password(self) -> str:
        path = self.root / "password"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"username": USER, "password": self.password, "serveraddress": self.address}

    def _write_config(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        htpasswd = self.root / "htpasswd"
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
            "http": {"addr": self.address, "secret": secrets.token_hex(16)},
            "auth": {"htpasswd": {"realm": "dockyard", "path": str(htpasswd)}},
        }
        path = self.root / "config.yml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    def _answers(self) -> bool:
        try:
            r = self._client().get("/v2/", timeout=1)
        except httpx.HTTPError:
            return False
        return r.status_code in (200, 401)

    def ensure_running(self) -> None:
        if self.process and self.process.running:
            return
        if self._answers():
            raise Unavailable(
                f"something already answers at {self.address}, so dockyard cannot start its registry there",
                "stop it, or set DOCKYARD_REGISTRY_PORT to a free port",
            )
        config = self._write_config()
        self.process = Supervised("registry", [self.binary, "serve", str(config)], self.root / "registry.log")
        self.process.start()
        deadline = time.monotonic() + 20
        while not self._answers():
            if time.monotonic() > deadline or not self.process.running:
                raise Unavailable(
                    f"the registry did not start at {self.address}: {self.process.recent_output()}",
                    "see the registry log under DOCKYARD_HOME/registry/registry.log",
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def config_digest(self, repository: str, tag: str) -> str | None:
        try:
            r = self._client().get(
                f"/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}, auth=(USER, self.password)
            )
        except httpx.HTTPError as exc:
            raise Unavailable(f"the registry at {self.address} does not answer: {exc}") from None
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise Unavailable(f"the registry answered {r.status_code} for {repository}:{tag}: {r.text[:200]}")
        config = r.json().get("config", {})
        return str(config["digest"]) if "digest" in config else None
