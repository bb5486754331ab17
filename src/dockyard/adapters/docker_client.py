"""The connection to a Docker engine and the labels everything dockyard creates there carries."""

from __future__ import annotations

from typing import Any

import docker
import docker.errors

from dockyard.domain.errors import Unavailable

LABEL = "dockyard"


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
