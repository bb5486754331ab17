"""The server itself: liveness of dockyard and of the parts it supervises."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dockyard.entrypoints.deps import PlatformDep, SystemReader

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/health")
def health(p: PlatformDep) -> dict[str, Any]:
    """Liveness of dockyard and of the parts it supervises (no token needed)."""
    return p.system.health()


@router.get("/system")
def system(p: PlatformDep, _: SystemReader) -> dict[str, Any]:
    """The data plane's containers (proxy, registry), the engine's live-restore, the network pool."""
    return p.system.status()
