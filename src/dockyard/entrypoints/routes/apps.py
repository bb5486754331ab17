"""Apps: create, list, show, delete; their domains, host access, images and container logs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from dockyard import bootstrap
from dockyard.domain.access import Action, Principal
from dockyard.domain.model import DEFAULT_ENVIRONMENT, HOST_ACCESS_KEYS, App
from dockyard.entrypoints.deps import AppManager, Origin, PlatformDep, Reader, require
from dockyard.entrypoints.routes.environments import environment_out, stream_lines
from dockyard.entrypoints.routes.jobs import job_out
from dockyard.services.events import Event

router = APIRouter(prefix="/api/v1/apps")


class AppIn(BaseModel):
    name: str = Field(examples=["shop"])
    deploy_branch: str = "main"
    domains: list[str] = []


class AppOut(BaseModel):
    name: str
    deploy_branch: str
    domains: list[str]
    host_access: list[str]
    git_remote: str
    created_at: datetime | None


class DomainsIn(BaseModel):
    domains: list[str]


class HostAccessIn(BaseModel):
    keys: list[str] = Field(description="compose keys the app's containers may use: " + ", ".join(HOST_ACCESS_KEYS),
                            examples=[["privileged"]])


def app_out(p: bootstrap.Platform, app: App) -> AppOut:
    return AppOut(name=app.name, deploy_branch=app.deploy_branch, domains=list(app.domains),
                  host_access=list(app.host_access), git_remote=f"{p.settings.url}/git/{app.name}.git",
                  created_at=app.created_at)


@router.get("", tags=["apps"])
def list_apps(p: PlatformDep, _: Reader) -> list[AppOut]:
    return [app_out(p, a) for a in p.apps.list_apps()]


@router.post("", status_code=201, tags=["apps"])
def create_app_route(body: AppIn, p: PlatformDep, who: AppManager, source: Origin) -> AppOut:
    """Create an app: a bare git repo to push to, an app network, a host name."""
    app = p.apps.create(body.name, body.deploy_branch, body.domains)
    p.events.publish(Event("app.created", who.name, source, app.name,
                           detail={"deploy_branch": app.deploy_branch, "domains": list(app.domains)}))
    return app_out(p, app)


@router.get("/{name}", tags=["apps"])
def status(name: str, p: PlatformDep, _: Reader) -> dict[str, Any]:
    """The app, its environments, and production's live release (environment values shown as
    "<redacted>"), containers, hosts and last job; the other environments' are at
    /environments/{env}."""
    app = p.apps.get(name)
    production = p.environments.status(app.name, DEFAULT_ENVIRONMENT)
    jobs = p.jobs.list_jobs(app.name, limit=1)
    return {
        "app": app_out(p, app).model_dump(mode="json"),
        "environments": [environment_out(p, e).model_dump(mode="json") for e in p.environments.of(app.name)],
        "live_release": production["live_release"],
        "urls": production["urls"],
        "containers": production["containers"],
        "last_job": job_out(jobs[0]).model_dump(mode="json") if jobs else None,
    }


@router.delete("/{name}", status_code=204, tags=["apps"])
def delete_app(name: str, p: PlatformDep, who: AppManager, source: Origin) -> None:
    """Stop the containers of every environment, remove their routes and networks, the repo and
    the records of the app. Volumes stay (dockyard volumes)."""
    p.apps.delete(name)
    p.events.publish(Event("app.deleted", who.name, source, name))


@router.put("/{name}/domains", tags=["apps"])
def set_domains(name: str, body: DomainsIn, p: PlatformDep, who: AppManager, source: Origin) -> AppOut:
    """Domains the app answers at, besides APP.<base domain>; applied at the next deploy. Hosts
    under the base domain belong to the app of that name: only APP may claim X.APP.<base domain>."""
    app = p.apps.set_domains(name, body.domains)
    p.events.publish(Event("app.domains_set", who.name, source, app.name, detail={"domains": list(app.domains)}))
    return app_out(p, app)


@router.put("/{name}/host-access", tags=["apps"])
def set_host_access(name: str, body: HostAccessIn, p: PlatformDep,
                    who: Annotated[Principal, require(Action.GRANT_HOST_ACCESS)], source: Origin) -> AppOut:
    """Compose keys that hand the app's containers the host (admin only); applied at the next
    push. The list replaces the previous one; an empty list allows none."""
    before = set(p.apps.get(name).host_access)
    app = p.apps.set_host_access(name, body.keys)
    for kind, keys in (("host_access.granted", set(app.host_access) - before),
                       ("host_access.revoked", before - set(app.host_access))):
        if keys:
            p.events.publish(Event(kind, who.name, source, app.name, detail={"keys": sorted(keys)}))
    return app_out(p, app)


@router.get("/{name}/images", tags=["images"])
def list_images(name: str, p: PlatformDep, _: Reader) -> list[dict[str, Any]]:
    """Images built for the app: name, version, tag, digest, commit, size, date, and the
    environments whose live release runs each."""
    return p.environments.images(name)


@router.get("/{name}/logs", tags=["apps"], response_class=StreamingResponse)
async def app_logs(name: str, p: PlatformDep, _: Reader, follow: bool = False, tail: int = 100) -> StreamingResponse:
    """Production's container output, one line per line, prefixed by service; `follow` streams.
    Another environment's: /environments/{env}/logs."""
    return stream_lines(p, name, DEFAULT_ENVIRONMENT, follow, tail)
