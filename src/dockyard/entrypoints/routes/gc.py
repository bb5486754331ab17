"""Garbage collection: images outside retention removed from this host and the registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from dockyard.domain.access import Action, Principal
from dockyard.entrypoints.deps import PlatformDep, can

router = APIRouter(prefix="/api/v1", tags=["gc"])
Admin = Annotated[Principal, can(Action.COLLECT_GARBAGE, app_param=None)]


class CollectedImageOut(BaseModel):
    app: str
    repository: str
    tag: str
    digest: str
    image_id: str
    commit: str
    size: int
    why: str


class GcOut(BaseModel):
    dry_run: bool
    keep_releases: int
    removed: list[CollectedImageOut]
    kept: list[CollectedImageOut]
    local_images: int
    local_bytes: int
    manifests: int
    registry_blobs: int | None
    registry_bytes: int
    notes: list[str]
    seconds: float


@router.post("/gc")
def collect_garbage(p: PlatformDep, _: Admin, dry_run: bool = False) -> GcOut:
    """Remove the images dockyard built that retention does not keep (admin only): from this
    host's engine and from the registry, whose garbage collection then frees their blobs while
    pushes wait. Kept: each environment's live release, its DOCKYARD_KEEP_RELEASES newest releases
    that served, releases under way, images containers use, the images of apps with a job queued
    or running. `dry_run`: say what would go, change nothing."""
    return GcOut.model_validate(p.gc.run(dry_run=dry_run).as_dict())
