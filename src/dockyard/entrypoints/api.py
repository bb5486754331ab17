"""The REST API (FastAPI). Routes are thin: parse, call the platform, shape the answer."""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from dockyard import __version__, bootstrap
from dockyard.config import Settings
from dockyard.domain import names
from dockyard.domain.errors import Conflict, DockyardError, Unauthorized
from dockyard.domain.model import DEFAULT_ENVIRONMENT, App
from dockyard.entrypoints import git_http

bearer = HTTPBearer(auto_error=False)


class Principal(BaseModel):
    name: str
    role: str


class AppIn(BaseModel):
    name: str = Field(examples=["shop"])
    deploy_branch: str = "main"
    domains: list[str] = []


class AppOut(BaseModel):
    name: str
    deploy_branch: str
    domains: list[str]
    git_remote: str
    created_at: datetime | None


class DomainsIn(BaseModel):
    domains: list[str]


class DeployIn(BaseModel):
    commit: str | None = Field(None, description="full commit id; default: the deploy branch's head")
    branch: str | None = None
    pusher: str | None = None
    await_push: bool = Field(False, description="the commit is being pushed: wait for the branch to point at it")


class JobOut(BaseModel):
    id: int
    kind: str
    app: str
    status: str
    payload: dict[str, str]
    error: str | None
    attempts: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class RejectedPushIn(BaseModel):
    ref: str
    reason: str
    pusher: str | None = None


class TokenIn(BaseModel):
    name: str
    role: Literal["admin"] = Field("admin", description="roles beyond admin come with approvals")


class ErrorOut(BaseModel):
    error: str
    hint: str = ""


def get_platform(request: Request) -> bootstrap.Platform:
    p: bootstrap.Platform = request.app.state.platform
    return p


PlatformDep = Annotated[bootstrap.Platform, Depends(get_platform)]


def principal(p: PlatformDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if creds is None:
        raise Unauthorized("missing token", "send 'Authorization: Bearer <token>' (set DOCKYARD_TOKEN)")
    if secrets.compare_digest(creds.credentials, p.hook_token):
        return Principal(name="git-hook", role="hook")
    found = p.store.verify_token(creds.credentials)
    if found is None:
        raise Unauthorized("invalid token", "check DOCKYARD_TOKEN; an admin can create one: dockyard tokens create")
    return Principal(name=found[0], role=found[1])


User = Annotated[Principal, Depends(principal)]


def free_domains(p: bootstrap.Platform, app: str, domains: list[str]) -> tuple[str, ...]:
    """Validated domains, none of which another app answers at already."""
    out = tuple(dict.fromkeys(names.domain_name(d) for d in domains))
    base = p.settings.base_domain
    for other in p.store.list_apps():
        if other.name == app:
            continue
        for domain in out:
            own = f"{other.name}.{base}"
            if domain in other.domains or domain == own or domain.endswith(f".{own}"):
                raise Conflict(f"{domain} already routes to app {other.name}",
                               "remove it from that app first: dockyard domains remove")
    return out


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        platform = bootstrap.bootstrap(settings)
        bootstrap.start(platform)
        api.state.platform = platform
        try:
            yield
        finally:
            bootstrap.stop(platform)

    api = FastAPI(
        title="dockyard", version=__version__, lifespan=lifespan,
        description="Self-hosted git push to production on Docker.",
        responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 404: {"model": ErrorOut}},
    )

    @api.exception_handler(DockyardError)
    async def dockyard_error(_: Request, exc: DockyardError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=exc.status)

    def app_out(p: bootstrap.Platform, app: App) -> AppOut:
        return AppOut(name=app.name, deploy_branch=app.deploy_branch, domains=list(app.domains),
                      git_remote=f"{settings.url}/git/{app.name}.git", created_at=app.created_at)

    def job_out(job: Any) -> JobOut:
        return JobOut(id=job.id, kind=job.kind, app=job.app, status=str(job.status), payload=job.payload,
                      error=job.error, attempts=job.attempts, created_at=job.created_at,
                      started_at=job.started_at, finished_at=job.finished_at)

    @api.get("/api/v1/health", tags=["system"])
    def health(p: PlatformDep) -> dict[str, Any]:
        """Liveness of dockyard and of the parts it supervises (no token needed)."""
        return {
            "version": __version__,
            "installation": p.engine.installation,
            "registry": {"address": p.registry.address, "running": bool(p.registry.process and p.registry.process.running)},
            "proxy": {"port": settings.proxy_port, "running": bool(p.proxy.process and p.proxy.process.running)},
        }

    @api.get("/api/v1/apps", tags=["apps"])
    def list_apps(p: PlatformDep, _: User) -> list[AppOut]:
        return [app_out(p, a) for a in p.store.list_apps()]

    @api.post("/api/v1/apps", status_code=201, tags=["apps"])
    def create_app_route(body: AppIn, p: PlatformDep, _: User) -> AppOut:
        """Create an app: a bare git repo to push to, an app network, a host name."""
        name = names.app_name(body.name)
        names.branch_name(body.deploy_branch)
        domains = free_domains(p, name, body.domains)
        if any(a.name == name for a in p.store.list_apps()):
            raise Conflict(f"app {name!r} already exists", "pick another name, or push to its remote")
        p.repos.create(name)
        app = p.store.create_app(App(name=name, deploy_branch=body.deploy_branch, domains=domains))
        return app_out(p, app)

    @api.get("/api/v1/apps/{name}", tags=["apps"])
    def status(name: str, p: PlatformDep, _: User) -> dict[str, Any]:
        """The app, its live release, the containers that run it and where it answers."""
        app = p.store.get_app(names.app_name(name))
        live = p.store.live_release(app.name, DEFAULT_ENVIRONMENT)
        containers = p.engine.observe(app.name)
        urls = [f"http://{h}:{settings.proxy_port}/" for s in (live or {}).get("services", []) for h in s["hosts"]]
        jobs = p.store.list_jobs(app.name, limit=1)
        return {
            "app": app_out(p, app).model_dump(mode="json"),
            "live_release": live,
            "urls": urls,
            "containers": [c.__dict__ for c in containers],
            "last_job": job_out(jobs[0]).model_dump(mode="json") if jobs else None,
        }

    @api.delete("/api/v1/apps/{name}", status_code=204, tags=["apps"])
    def delete_app(name: str, p: PlatformDep, _: User) -> None:
        """Stop the app's containers, remove its routes, network, repo and records of it."""
        app = p.store.get_app(names.app_name(name))
        busy = [j for j in p.store.list_jobs(app.name, limit=20) if not j.status.finished]
        if busy:
            raise Conflict(f"{app.name} has a {busy[0].kind} job running (job {busy[0].id})",
                           f"wait for it to end (dockyard jobs show {busy[0].id} -f), then delete the app")
        p.deployer.destroy(app.name)
        p.repos.delete(app.name)
        p.store.delete_app(app.name)

    @api.put("/api/v1/apps/{name}/domains", tags=["apps"])
    def set_domains(name: str, body: DomainsIn, p: PlatformDep, _: User) -> AppOut:
        """Domains the app answers at, besides APP.<base domain>; applied at the next deploy."""
        app_name = names.app_name(name)
        app = p.store.set_domains(app_name, free_domains(p, app_name, body.domains))
        return app_out(p, app)

    @api.post("/api/v1/apps/{name}/deploys", status_code=202, tags=["deploys"])
    def deploy(name: str, body: DeployIn, p: PlatformDep, who: User) -> JobOut:
        """Queue a build and release of a commit (default: the deploy branch's head)."""
        app = p.store.get_app(names.app_name(name))
        branch = names.branch_name(body.branch or app.deploy_branch)
        if body.commit is not None and not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", body.commit):
            raise DockyardError(f"not a full commit id: {body.commit[:80]!r}", "give the 40-character commit id")
        commit = body.commit or p.repos.head(app.name, branch)
        if not commit:
            raise DockyardError(f"nothing pushed to {app.name}'s branch {branch!r} yet",
                                f"push first: git push {settings.url}/git/{app.name}.git {branch}")
        pending = p.store.pending_deploy(app.name, commit)
        if pending is not None:  # queued by the push's pre-receive hook already
            return job_out(pending)
        payload = {"commit": commit, "branch": branch, "actor": body.pusher or who.name}
        if body.await_push:
            payload["await_push"] = "true"
        return job_out(p.runner.submit("deploy", app.name, payload))

    @api.post("/api/v1/apps/{name}/rejected-pushes", status_code=201, tags=["deploys"])
    def rejected_push(name: str, body: RejectedPushIn, p: PlatformDep, who: User) -> JobOut:
        """Record a push the git hook refused, so the API shows why (used by dockyard's hook)."""
        app = p.store.get_app(names.app_name(name))
        job = p.store.record_failed_job(
            "push", app.name, {"ref": body.ref[:200], "actor": body.pusher or who.name}, body.reason[:2000],
            f" !     push to {body.ref[:200]} rejected: {body.reason[:2000]}",
        )
        return job_out(job)

    @api.get("/api/v1/apps/{name}/images", tags=["images"])
    def list_images(name: str, p: PlatformDep, _: User) -> list[dict[str, Any]]:
        """Images built for the app: name, version, tag, digest, commit, size, date."""
        app = p.store.get_app(names.app_name(name))
        return [dict(i.__dict__, reference=f"{p.registry.address}/{i.repository}:{i.tag}")
                for i in p.store.list_images(app.name)]

    @api.get("/api/v1/apps/{name}/releases", tags=["deploys"])
    def list_releases(name: str, p: PlatformDep, _: User) -> list[dict[str, Any]]:
        app = p.store.get_app(names.app_name(name))
        return p.store.list_releases(app.name)

    @api.get("/api/v1/apps/{name}/logs", tags=["apps"], response_class=StreamingResponse)
    async def app_logs(name: str, p: PlatformDep, _: User, follow: bool = False, tail: int = 100) -> StreamingResponse:
        """The app's container output, one line per line, prefixed by service; `follow` streams."""
        app = p.store.get_app(names.app_name(name))
        stop = threading.Event()
        lines = p.engine.logs(app.name, follow=follow, tail=max(0, min(tail, 10000)), stop=stop)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | None] = asyncio.Queue()

        def pump() -> None:  # the engine's iterator blocks: read it in a thread of its own
            try:
                for line in lines:
                    loop.call_soon_threadsafe(queue.put_nowait, line)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=pump, name=f"logs-{app.name}", daemon=True).start()

        async def out() -> AsyncIterator[str]:
            try:
                while (line := await queue.get()) is not None:
                    yield f"{line}\n"
            finally:
                stop.set()  # the client went away (or all streams ended): the reader thread ends

        return StreamingResponse(out(), media_type="text/plain")

    @api.get("/api/v1/jobs", tags=["jobs"])
    def list_jobs(p: PlatformDep, _: User, app: str | None = None) -> list[JobOut]:
        return [job_out(j) for j in p.store.list_jobs(names.app_name(app) if app else None)]

    @api.get("/api/v1/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: int, p: PlatformDep, _: User) -> JobOut:
        return job_out(p.store.get_job(job_id))

    @api.get("/api/v1/jobs/{job_id}/logs", tags=["jobs"], response_class=StreamingResponse)
    def job_logs(job_id: int, p: PlatformDep, _: User, follow: bool = False, after: int = 0) -> StreamingResponse:
        """The job's log; with `follow`, streams until the job ends, then a final status line."""
        p.store.get_job(job_id)

        async def lines() -> AsyncIterator[str]:
            # async: a follower waits on the event loop, not on one of the server's threads
            last = after
            while True:
                done = (await run_in_threadpool(p.store.get_job, job_id)).status.finished
                for line_id, line in await run_in_threadpool(p.store.job_logs, job_id, last):
                    last = line_id
                    yield line + "\n"
                if done or not follow:
                    break
                await asyncio.sleep(0.1)
            if follow:
                job = await run_in_threadpool(p.store.get_job, job_id)
                yield f"=====> job {job.id} {job.status}\n"

        return StreamingResponse(lines(), media_type="text/plain")

    @api.get("/api/v1/tokens", tags=["tokens"])
    def list_tokens(p: PlatformDep, _: User) -> list[dict[str, Any]]:
        return p.store.list_tokens()

    @api.post("/api/v1/tokens", status_code=201, tags=["tokens"])
    def create_token(body: TokenIn, p: PlatformDep, _: User) -> dict[str, str]:
        """A new API and git token; the answer is the only time it is shown."""
        return {"name": body.name, "token": p.store.create_token(names.token_name(body.name), body.role)}

    @api.delete("/api/v1/tokens/{name}", status_code=204, tags=["tokens"])
    def revoke_token(name: str, p: PlatformDep, _: User) -> None:
        p.store.revoke_token(name)

    git_http.mount(api, settings)
    return api
