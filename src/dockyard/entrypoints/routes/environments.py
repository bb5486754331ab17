"""An app's environments: list, add, remove, set their branch; deploy to one, roll it back or scale it; its
status, releases, images and container logs; scale its services. The routes call services only."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from dockyard.domain.access import ADMIN, Action, Principal
from dockyard.domain.model import LOCAL_TARGET, Environment
from dockyard.entrypoints.deps import AppManager, Origin, PlatformDep, Reader, actor, require
from dockyard.entrypoints.routes.jobs import JobOut, job_out, queued
from dockyard.services.events import GIT_PUSH, Event

router = APIRouter(prefix="/api/v1/apps/{name}/environments", tags=["environments"])


class EnvironmentIn(BaseModel):
    name: str = Field(examples=["recette"])
    target: str = Field(LOCAL_TARGET, description="the Docker target it runs on ('local': this host)")
    branch: str | None = Field(None, description="pushes to this branch deploy here; none: deployed on demand")


class BranchIn(BaseModel):
    branch: str | None = Field(description="pushes to this branch deploy here; null: deployed on demand only")


class EnvironmentOut(BaseModel):
    name: str
    target: str
    branch: str | None = Field(description="pushes to it deploy here (production: the app's deploy branch)")
    site: str = Field(description="the host its first web service answers at")
    created_at: datetime | None
    protected: bool = Field(False, description="deployed, rolled back, scaled and configured by admins only")


class ProtectionIn(BaseModel):
    protected: bool


class DeclaredIn(BaseModel):
    target: str = LOCAL_TARGET
    branch: str


class DeployIn(BaseModel):
    commit: str | None = Field(None, description="full commit id; default: the head of the environment's branch")
    branch: str | None = Field(None, description="default: the environment's branch")
    pusher: str | None = Field(None, description="set by dockyard's git hook only")
    await_push: bool = Field(False, description="the commit is being pushed: wait for the branch to point at it")
    force: bool = Field(False, description="release even what failed last time with nothing changed since")
    repo: str = Field("", max_length=64, description="a source repo of the app: build its commit (default: its "
                      "branch's head), then release the deploy repo's stack (dockyard repos)")
    declared: DeclaredIn | None = Field(None, description="the environment as the commit's dockyard.yml declares "
                                                          "it: added first if the app does not have it yet")


class RollbackIn(BaseModel):
    release: int | None = Field(None, description="the release to return to; default: the newest one that "
                                                  "served before the live one")


class ScaleIn(BaseModel):
    replicas: dict[str, int] = Field(description="service -> how many containers run it (0 to 100)",
                                     examples=[{"web": 3}])


def environment_out(p: PlatformDep, env: Environment) -> EnvironmentOut:
    app = p.apps.get(env.app)
    status = p.environments
    return EnvironmentOut(name=env.name, target=env.target, branch=status.branch_of(app, env),
                          site=status.site(env.app, env.name), created_at=env.created_at, protected=env.protected)


@router.get("")
def list_environments(name: str, p: PlatformDep, _: Reader) -> list[EnvironmentOut]:
    """The app's environments, production first."""
    return [environment_out(p, e) for e in p.environments.of(name)]


@router.post("", status_code=201)
def create_environment(name: str, body: EnvironmentIn, p: PlatformDep, who: AppManager,
                       source: Origin) -> EnvironmentOut:
    """Add an environment (its own network, containers, volumes, routes, releases, variables and
    secrets); it runs nothing until its first deploy."""
    made = p.environments.create(name, body.name, body.target, body.branch)
    p.events.publish(Event("environment.created", who.name, source, made.app, made.name,
                           {"target": made.target, "branch": body.branch}))
    return environment_out(p, made)


@router.get("/{env}")
def environment_status(name: str, env: str, p: PlatformDep, _: Reader) -> dict[str, Any]:
    """The environment, its live release (environment values shown as "<redacted>"), the
    containers that run it, where it answers and its last job."""
    status = p.environments.status(name, env)
    status["waiting"] = [w for w in p.promotions.waiting(name) if w["environment"] == env]
    job = status.pop("last_job")
    status["last_job"] = job_out(job).model_dump(mode="json") if job is not None else None
    return status


@router.put("/{env}/branch")
def set_branch(name: str, env: str, body: BranchIn, p: PlatformDep, who: AppManager,
               source: Origin) -> EnvironmentOut:
    """The branch whose pushes deploy to the environment."""
    changed = p.environments.set_branch(name, env, body.branch)
    p.events.publish(Event("environment.branch_set", who.name, source, changed.app, changed.name,
                           {"branch": body.branch}))
    return environment_out(p, changed)


@router.put("/{env}/protection")
def set_protection(name: str, env: str, body: ProtectionIn, p: PlatformDep, who: AppManager,
                   source: Origin) -> EnvironmentOut:
    """Protect an environment (or not): a protected one takes deploys, rollbacks, scaling and
    configuration from admins only, and a developer's push does not deploy it."""
    changed = p.environments.set_protected(name, env, body.protected)
    p.events.publish(Event("environment.protected" if changed.protected else "environment.unprotected", who.name,
                           source, changed.app, changed.name))
    return environment_out(p, changed)


@router.delete("/{env}", status_code=204)
def remove_environment(name: str, env: str, p: PlatformDep, who: AppManager, source: Origin) -> None:
    """Stop the environment's containers, remove its routes and network, forget its releases,
    variables and secrets. Its volumes stay (dockyard volumes list APP --env ENV). Not production."""
    p.environments.remove(name, env)
    p.events.publish(Event("environment.removed", who.name, source, name, env))


@router.post("/{env}/deploys", status_code=202)
def deploy(name: str, env: str, body: DeployIn, p: PlatformDep,
           who: Annotated[Principal, require(Action.DEPLOY)], source: Origin) -> JobOut:
    """Queue a build and release of a commit to the environment."""
    by = actor(who, name, body.pusher)
    if body.declared is not None:
        p.environments.declare(name, env, body.declared.target, body.declared.branch)
    job = p.environments.queue_deploy(name, env, by, body.commit, body.branch, body.await_push, body.force,
                                      override=who.role == ADMIN and body.pusher is None, repo=body.repo)
    return queued(p, job, GIT_PUSH if body.pusher is not None else source)


@router.post("/{env}/rollbacks", status_code=202)
def rollback(name: str, env: str, body: RollbackIn, p: PlatformDep,
             who: Annotated[Principal, require(Action.DEPLOY)], source: Origin) -> JobOut:
    """Queue a return to an earlier release of the environment: its images by digest, its stack and
    configuration, through the same gates as a deploy; nothing is built. Recorded as a new release."""
    return queued(p, p.rollbacks.queue(name, env, actor(who, name, None), body.release), source)


@router.post("/{env}/release/{action}")
def act_on_release(name: str, env: str, action: Literal["abort", "pause", "resume"], p: PlatformDep,
                   who: Annotated[Principal, require(Action.DEPLOY)], source: Origin) -> dict[str, Any]:
    """Act on the release running in the environment: ``abort`` fails it at its next step (before
    the switch its new containers stop at once) and rolls it back; ``pause`` holds it between two
    steps, its deadline stopped; ``resume`` lets it go on. 409 when none is running."""
    done = p.environments.act_on_release(name, env, action, actor(who, name, None))
    kind = {"abort": "release.aborted", "pause": "release.paused", "resume": "release.resumed"}[action]
    p.events.publish(Event(kind, who.name, source, name, env, {"release": done.get("release")}))
    return done


@router.post("/{env}/scale", status_code=202)
def scale(name: str, env: str, body: ScaleIn, p: PlatformDep,
          who: Annotated[Principal, require(Action.DEPLOY)], source: Origin) -> JobOut:
    """Set how many containers run services of the environment (kept over the compose file's and
    dockyard.yml's counts), and queue the live release again with them: the replicas that stay keep
    running. Refused, changing nothing, for a service the live release lacks or cannot run that many of."""
    return queued(p, p.scaling.set(name, env, actor(who, name, None), body.replicas), source)


@router.get("/{env}/plan")
def plan(name: str, env: str, p: PlatformDep, _: Reader, commit: str | None = None,
         branch: str | None = None) -> dict[str, Any]:
    """What a deploy of a commit (default: the head of the environment's branch) would change,
    per service, with the reasons (image, variable X, secret Y's version, ports, hosts, removal).
    Builds nothing, starts nothing, records nothing; refuses what a deploy would refuse."""
    return p.planner.plan(name, env, commit, branch)


@router.get("/{env}/releases")
def list_releases(name: str, env: str, p: PlatformDep, _: Reader, limit: int = 20) -> list[dict[str, Any]]:
    """The environment's releases, newest first, after the ones waiting to enter it (status
    "awaiting", with what they wait for as their error); environment values are "<redacted>"."""
    waiting = [{"id": w["release"], "environment": env, "status": "awaiting", "commit": w["commit"], "services": [],
                "created_at": w["created_at"], "error": f"from {w['from']}: waiting for {w['waiting_for']}"}
               for w in p.promotions.waiting(name) if w["environment"] == env]
    return waiting + p.environments.releases(name, env, max(1, min(limit, 500)))


@router.get("/{env}/images")
def list_images(name: str, env: str, p: PlatformDep, _: Reader) -> list[dict[str, Any]]:
    """The images the environment's live release runs, pinned by digest."""
    return p.environments.images(name, env)


@router.get("/{env}/logs", response_class=StreamingResponse)
async def logs(name: str, env: str, p: PlatformDep, _: Reader, follow: bool = False,
               tail: int = 100) -> StreamingResponse:
    """The environment's container output, one line per line, prefixed by service; `follow` streams."""
    return stream_lines(p, name, env, follow, tail)


def stream_lines(p: PlatformDep, app: str, env: str, follow: bool, tail: int) -> StreamingResponse:
    stop = threading.Event()
    lines = p.environments.logs(app, env, follow, tail, stop)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def pump() -> None:  # the engine's iterator blocks: read it in a thread of its own
        try:
            for line in lines:
                loop.call_soon_threadsafe(queue.put_nowait, line)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name=f"logs-{app}-{env}", daemon=True).start()

    async def out() -> AsyncIterator[str]:
        try:
            while (line := await queue.get()) is not None:
                yield f"{line}\n"
        finally:
            stop.set()  # the client went away (or all streams ended): the reader thread ends

    return StreamingResponse(out(), media_type="text/plain")
