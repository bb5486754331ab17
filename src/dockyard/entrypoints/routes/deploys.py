"""Deploys: queue one, record a push the git hook refused, list releases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.domain.access import Action, Principal
from dockyard.domain.model import DEFAULT_ENVIRONMENT
from dockyard.entrypoints.deps import PlatformDep, Reader, actor, can
from dockyard.entrypoints.routes.jobs import JobOut, job_out

router = APIRouter(prefix="/api/v1/apps/{name}", tags=["deploys"])


class DeployIn(BaseModel):
    commit: str | None = Field(None, description="full commit id; default: the deploy branch's head")
    branch: str | None = None
    pusher: str | None = Field(None, description="set by dockyard's git hook only")
    await_push: bool = Field(False, description="the commit is being pushed: wait for the branch to point at it")


class RejectedPushIn(BaseModel):
    ref: str
    reason: str
    pusher: str | None = Field(None, description="set by dockyard's git hook only")


@router.post("/deploys", status_code=202)
def deploy(name: str, body: DeployIn, p: PlatformDep, who: Annotated[Principal, can(Action.DEPLOY)]) -> JobOut:
    """Queue a build and release of a commit to production (default: the deploy branch's head).
    Another environment: /environments/{env}/deploys."""
    job = p.environments.queue_deploy(name, DEFAULT_ENVIRONMENT, actor(who, name, body.pusher), body.commit,
                                      body.branch, body.await_push)
    return job_out(job)


@router.post("/rejected-pushes", status_code=201)
def rejected_push(name: str, body: RejectedPushIn, p: PlatformDep,
                  who: Annotated[Principal, can(Action.RECORD_REJECTED_PUSH)]) -> JobOut:
    """Record a push the git hook refused, so the API shows why (used by dockyard's hook)."""
    app = p.apps.get(name)
    return job_out(p.jobs.record_refused_push(app.name, body.ref, body.reason, actor(who, app.name, body.pusher)))


@router.get("/releases")
def list_releases(name: str, p: PlatformDep, _: Reader, limit: int = 20) -> list[dict[str, Any]]:
    """The releases of every environment of the app, newest first; environment values are shown
    as "<redacted>"."""
    return p.environments.releases(name, None, max(1, min(limit, 500)))
