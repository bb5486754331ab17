"""The server itself: liveness of dockyard and of the parts it supervises."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dockyard import __version__
from dockyard.entrypoints.deps import PlatformDep, SystemReader
from dockyard.services import system as services_system

router = APIRouter(prefix="/api/v1", tags=["system"])


@router.get("/health")
def health(p: PlatformDep) -> dict[str, Any]:
    """Liveness of dockyard and of the parts it supervises (no token needed)."""
    return {
        "version": __version__,
        "installation": p.engine.installation,
        "registry": {"address": p.registry.address, "running": p.registry.running},
        "proxy": {"port": p.settings.proxy_port, "running": p.proxy.running},
    }


@router.get("/system")
def system(p: PlatformDep, _: SystemReader) -> dict[str, Any]:
    """The data plane's containers (proxy, registry), the engine's live-restore, the network pool."""
    return services_system.status(p.plane, p.engine, p.settings.proxy_port, p.registry.address)
