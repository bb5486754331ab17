"""Deploys: queue one, check a push for the git hook (and record one it refused), list releases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.domain.access import ADMIN, Action, Principal
from dockyard.domain.model import DEFAULT_ENVIRONMENT
from dockyard.entrypoints.deps import Origin, PlatformDep, Reader, actor, require
from dockyard.entrypoints.routes.jobs import JobOut, job_out, queued
from dockyard.services.events import GIT_PUSH, Event
from dockyard.services.push_check import RefUpdate

router = APIRouter(prefix="/api/v1/apps/{name}", tags=["deploys"])
MAX_REFS_TOLD, MAX_REASON_TOLD = 50, 500  # what a push's audit entry keeps of its refs and of a refusal


class DeployIn(BaseModel):
    commit: str | None = Field(None, description="full commit id; default: the deploy branch's head")
    branch: str | None = None
    pusher: str | None = Field(None, description="set by dockyard's git hook only")
    await_push: bool = Field(False, description="the commit is being pushed: wait for the branch to point at it")
    repo: str = Field("", max_length=64, description="a source repo of the app: build its commit (default: its "
                      "branch's head), then release the deploy repo's stack (dockyard repos)")


class RefUpdateIn(BaseModel):
    old: str = Field(max_length=64)
    new: str = Field(max_length=64)
    ref: str = Field(max_length=1024)


class PushCheckIn(BaseModel):
    updates: list[RefUpdateIn] = Field(max_length=1000, description="pre-receive's input, a line each")
    incoming: str = Field(max_length=4096, description="the push's quarantine folder (GIT_QUARANTINE_PATH)")
    pusher: str | None = Field(None, description="set by dockyard's git hook only")
    repo: str = Field("", max_length=64, description="which of the app's repos is pushed (\"\": its own)")


class QueuedDeployOut(BaseModel):
    branch: str
    commit: str
    environment: str
    target: str = Field(description="set when this deploy adds the environment dockyard.yml declares")
    job: int | None = Field(description="the deploy job; null when it could not be queued yet")


class PushCheckOut(BaseModel):
    accepted: bool
    message: str = ""
    hint: str = ""
    said: list[str] = Field(default_factory=list, description="lines for the pusher's terminal")
    deploys: list[QueuedDeployOut] = Field(default_factory=list)


class RejectedPushIn(BaseModel):
    ref: str
    reason: str
    pusher: str | None = Field(None, description="set by dockyard's git hook only")


@router.post("/deploys", status_code=202)
def deploy(name: str, body: DeployIn, p: PlatformDep, who: Annotated[Principal, require(Action.DEPLOY)],
           source: Origin) -> JobOut:
    """Queue a build and release of a commit to production (default: the deploy branch's head).
    Another environment: /environments/{env}/deploys."""
    job = p.environments.queue_deploy(name, DEFAULT_ENVIRONMENT, actor(who, name, body.pusher), body.commit,
                                      body.branch, body.await_push, override=who.role == ADMIN and body.pusher is None,
                                      repo=body.repo)
    return queued(p, job, GIT_PUSH if body.pusher is not None else source)


@router.post("/push-checks")
def check_push(name: str, body: PushCheckIn, p: PlatformDep,
               who: Annotated[Principal, require(Action.CHECK_PUSH)]) -> PushCheckOut:
    """Check a push git is receiving (used by dockyard's pre-receive hook): ref names, and the
    commit's Dockerfiles, compose file and dockyard.yml for each environment its branch deploys
    to. Accepted: its deploys are queued, each waiting for the push to land. Refused: recorded as a
    failed job, and nothing is queued."""
    by = actor(who, name, body.pusher)
    verdict = p.pushes.check(name, [RefUpdate(u.old, u.new, u.ref) for u in body.updates], body.incoming, by, who,
                             body.repo)
    refusal = verdict.refusal
    refs = [{"ref": u.ref, "old": u.old, "new": u.new, **({"repo": body.repo} if body.repo else {})}
            for u in body.updates[:MAX_REFS_TOLD]]
    told = ({"refs": refs, "deploys": [{"environment": d.environment, "commit": d.commit, "job": d.job}
                                       for d in verdict.deploys]}
            if refusal is None else {"refs": refs, "reason": refusal.message[:MAX_REASON_TOLD]})
    p.events.publish(Event("push.accepted" if refusal is None else "push.refused", by, GIT_PUSH, name, detail=told))
    for repo in verdict.repos_added:  # declared by the pushed dockyard.yml
        p.events.publish(Event("repo.added", by, GIT_PUSH, name, detail={"repo": repo, "role": "source",
                                                                         "declared": "dockyard.yml"}))
    return PushCheckOut(
        accepted=verdict.accepted, message=refusal.message if refusal else "", hint=refusal.hint if refusal else "",
        said=list(verdict.said),
        deploys=[QueuedDeployOut(branch=d.branch, commit=d.commit, environment=d.environment, target=d.target,
                                 job=d.job) for d in verdict.deploys])


@router.post("/rejected-pushes", status_code=201)
def rejected_push(name: str, body: RejectedPushIn, p: PlatformDep,
                  who: Annotated[Principal, require(Action.RECORD_REJECTED_PUSH)]) -> JobOut:
    """Record a push the git hook refused, so the API shows why (used by dockyard's hook)."""
    app = p.apps.get(name)
    by = actor(who, app.name, body.pusher)
    job = p.jobs.record_refused_push(app.name, body.ref, body.reason, by)
    p.events.publish(Event("push.refused", by, GIT_PUSH, app.name,
                           detail={"refs": [{"ref": body.ref[:200]}], "reason": body.reason[:MAX_REASON_TOLD],
                                   "job": job.id}))
    return job_out(job)


@router.get("/releases")
def list_releases(name: str, p: PlatformDep, _: Reader, limit: int = 20) -> list[dict[str, Any]]:
    """The releases of every environment of the app, newest first; environment values are shown
    as "<redacted>"."""
    return p.environments.releases(name, None, max(1, min(limit, 500)))
