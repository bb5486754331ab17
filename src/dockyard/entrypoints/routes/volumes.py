"""An app environment's named volumes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.domain.access import Action, Principal
from dockyard.entrypoints.deps import AppManager, Origin, PlatformDep, Reader, authorize, require
from dockyard.services.backups import Archive
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


class ArchiveOut(BaseModel):
    id: str
    app: str
    environment: str = Field(description="the environment whose volume it is a copy of")
    volume: str
    created_at: str
    bytes: int = Field(description="the compressed archive's size")
    sha256: str = Field(description="the archive's SHA-256, checked before any restore")
    by: str
    running: list[str] = Field(description="services that ran on the volume while it was taken (not quiesced)")
    path: str = Field(description="where it is on the server: DOCKYARD_HOME/backups/APP/ENV/VOLUME/ID.tar.gz")


class RestoreIn(BaseModel):
    archive: str = Field(max_length=64, description="the backup's id (dockyard volumes backups)")


class CopyIn(BaseModel):
    source: str = Field(alias="from", max_length=64, description="the environment to copy the volume from")


def archive_out(archive: Archive) -> ArchiveOut:
    return ArchiveOut(**{**asdict(archive), "running": list(archive.running)})


Changer = Annotated[Principal, require(Action.DEPLOY)]  # a protected environment's volumes: admins only


@router.post("/{volume}/backups", status_code=201)
def backup(name: str, env: str, volume: str, p: PlatformDep, who: Changer, source: Origin) -> ArchiveOut:
    """Archive the volume's files now (tar, gzip, SHA-256) under DOCKYARD_HOME/backups. Its services
    keep running: the archive lists those that ran on it."""
    return archive_out(p.backups.backup(name, env, volume, who.name, source))


@router.post("/{volume}/restore")
def restore(name: str, env: str, volume: str, body: RestoreIn, p: PlatformDep, who: Changer,
            source: Origin) -> ArchiveOut:
    """Replace the volume's files with a backup's (of any environment of the app; its checksum is
    checked first). The services that mount it stop meanwhile and start again. Refused while a
    release runs there. A backup of a protected environment is an admin's to restore elsewhere."""
    _may_read(p, who, name, p.backups.find(name, body.archive).environment)
    return archive_out(p.backups.restore(name, env, volume, body.archive, who.name, source))


@router.post("/{volume}/copy")
def copy(name: str, env: str, volume: str, body: CopyIn, p: PlatformDep, who: Changer, source: Origin) -> ArchiveOut:
    """Copy the volume of another environment of the app into this one: a backup there (kept), then
    a restore here. To or from a protected environment: admins only."""
    _may_read(p, who, name, body.source)
    return archive_out(p.backups.copy(name, body.source, env, volume, who.name, source))


def _may_read(p: PlatformDep, who: Principal, app: str, env: str) -> None:
    """Another environment's data, as a copy or a restore takes it: the same right as backing it up
    there (a developer does not get a protected environment's data into another one)."""
    authorize(who, Action.DEPLOY, app, p.environments.is_protected(app, env))


backups_router = APIRouter(prefix="/api/v1/apps/{name}/backups", tags=["volumes"])


@backups_router.get("")
def list_backups(name: str, p: PlatformDep, _: Reader, environment: str | None = None,
                 volume: str | None = None) -> list[ArchiveOut]:
    """The app's volume backups, newest first."""
    return [archive_out(a) for a in p.backups.archived(name, environment, volume)]
