"""What dockyard reads of a push: the size caps on pushed files, and the error for one over its cap.

Sizes are of the file in git; a text is measured in characters, which are never more than its
bytes. The caps are here, in one place, for the Dockerfile, the compose file and its env files,
and dockyard.yml; the bounds of their YAML (nodes, depth) are the loader's, in ``compose_yaml``.
"""

from __future__ import annotations

from dockyard.domain.errors import InvalidSource

MAX_DOCKERFILE_BYTES = 256 * 1024
MAX_COMPOSE_BYTES = 256 * 1024
MAX_ENV_FILE_BYTES = 256 * 1024
MAX_DOCKYARD_FILE_BYTES = 256 * 1024  # dockyard.yml, the app's configuration as code
MAX_DOCKERFILES = 100  # images built from one commit


def _amount(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} bytes"


def too_large(path: str, size: int, limit: int) -> InvalidSource:
    """The error for a pushed file over its limit (Dockerfile, compose file, env file, dockyard.yml)."""
    return InvalidSource(
        f"{path} is {size} bytes, more than the {_amount(limit)} dockyard reads of such a file",
        "keep Dockerfiles, compose files, env files and dockyard.yml small: move long scripts and data "
        "into files the build COPYs",
    )
