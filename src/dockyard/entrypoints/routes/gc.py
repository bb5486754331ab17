"""Garbage collection: images outside retention removed from this host and the registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel

from dockyard.domain.access import Action, Principal
from dockyard.entrypoints.deps import Origin, PlatformDep, require
from dockyard.services.events import Event

router = APIRouter(prefix="/api/v1", tags=["gc"])
Admin = Annotated[Principal, require(Action.COLLECT_GARBAGE, app_param=None)]


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
def collect_garbage(p: PlatformDep, who: Admin, source: Origin, dry_run: bool = False) -> GcOut:
    """Remove the images dockyard built that retention does not keep (admin only): from this
    host's engine and from the registry, whose garbage collection then frees their blobs while
    pushes wait. Kept: each environment's live release, its DOCKYARD_KEEP_RELEASES newest releases
    that served, releases under way, images containers use, the images of apps with a job queued
    or running. `dry_run`: say what would go, change nothing."""
    report = GcOut.model_validate(p.gc.run(dry_run=dry_run).as_dict())
    removed = [f"{i.app} {i.repository}:{i.tag}" for i in report.removed]
    p.events.publish(Event("gc.run", who.name, source, detail={"dry_run": dry_run, "removed": len(removed),
                                                               "kept": len(report.kept), "images": removed[:100]}))
    return report
