"""Deploys: queue one, record a push the git hook refused, list releases."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.domain import names
from dockyard.domain.access import Action, Principal
from dockyard.domain.errors import DockyardError
from dockyard.entrypoints.deps import PlatformDep, Reader, actor, can
from dockyard.entrypoints.routes.jobs import JobOut, job_out

router = APIRouter(prefix="/api/v1/apps/{name}", tags=["deploys"])

REDACTED = "<redacted>"


class DeployIn(BaseModel):
    commit: str | None = Field(None, description="full commit id; default: the deploy branch's head")
    branch: str | None = None
    pusher: str | None = Field(None, description="set by dockyard's git hook only")
    await_push: bool = Field(False, description="the commit is being pushed: wait for the branch to point at it")


class RejectedPushIn(BaseModel):
    ref: str
    reason: str
    pusher: str | None = Field(None, description="set by dockyard's git hook only")


def redacted(release: dict[str, Any]) -> dict[str, Any]:
    """A release as answers show it: environment variables by name, their values kept back (the
    store keeps them; secrets will get a place of their own)."""
    services = [dict(s, environment=[[pair[0], REDACTED] for pair in s.get("environment") or []])
                for s in release.get("services") or []]
    return dict(release, services=services)


@router.post("/deploys", status_code=202)
def deploy(name: str, body: DeployIn, p: PlatformDep, who: Annotated[Principal, can(Action.DEPLOY)]) -> JobOut:
    """Queue a build and release of a commit (default: the deploy branch's head)."""
    app = p.store.get_app(names.app_name(name))
    by = actor(who, app.name, body.pusher)
    branch = names.branch_name(body.branch or app.deploy_branch)
    if body.commit is not None and not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", body.commit):
        raise DockyardError(f"not a full commit id: {body.commit[:80]!r}", "give the 40-character commit id")
    commit = body.commit or p.repos.head(app.name, branch)
    if not commit:
        raise DockyardError(f"nothing pushed to {app.name}'s branch {branch!r} yet",
                            f"push first: git push {p.settings.url}/git/{app.name}.git {branch}")
    pending = p.store.pending_deploy(app.name, commit)
    if pending is not None:  # queued by the push's pre-receive hook already
        return job_out(pending)
    payload = {"commit": commit, "branch": branch, "actor": by}
    if body.await_push:
        payload["await_push"] = "true"
    return job_out(p.runner.submit("deploy", app.name, payload))


@router.post("/rejected-pushes", status_code=201)
def rejected_push(name: str, body: RejectedPushIn, p: PlatformDep,
                  who: Annotated[Principal, can(Action.RECORD_REJECTED_PUSH)]) -> JobOut:
    """Record a push the git hook refused, so the API shows why (used by dockyard's hook)."""
    app = p.store.get_app(names.app_name(name))
    job = p.store.record_failed_job(
        "push", app.name, {"ref": body.ref[:200], "actor": actor(who, app.name, body.pusher)}, body.reason[:2000],
        f" !     push to {body.ref[:200]} rejected: {body.reason[:2000]}",
    )
    return job_out(job)


@router.get("/releases")
def list_releases(name: str, p: PlatformDep, _: Reader) -> list[dict[str, Any]]:
    """The app's releases, newest first; environment values are shown as "<redacted>"."""
    app = p.store.get_app(names.app_name(name))
    return [redacted(r) for r in p.store.list_releases(app.name)]
