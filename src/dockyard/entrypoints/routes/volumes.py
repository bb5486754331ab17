"""An app environment's named volumes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from dockyard.entrypoints.deps import AppManager, Origin, PlatformDep, Reader
from dockyard.services.events import Event

router = APIRouter(prefix="/api/v1/apps/{name}/environments/{env}/volumes", tags=["volumes"])


@router.get("")
def list_volumes(name: str, env: str, p: PlatformDep, _: Reader) -> list[dict[str, Any]]:
    """The environment's named volumes: name, engine volume, size in bytes, services mounting it."""
    return [v.__dict__ for v in p.environments.volumes(name, env)]


@router.delete("/{volume}", status_code=204)
def remove_volume(name: str, env: str, volume: str, p: PlatformDep, who: AppManager, source: Origin,
                  confirm: str = "") -> None:
    """Remove a volume and its data for good; `confirm` must repeat its name. Refused while a
    container mounts it."""
    p.environments.remove_volume(name, env, volume, confirm)
    p.events.publish(Event("volume.removed", who.name, source, name, env, {"volume": volume}))
