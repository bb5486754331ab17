"""The REST API (FastAPI): the app, its lifespan and error answers. Routes live in ``routes/``,
one router per noun; what they share (platform, caller, permissions) in ``deps.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dockyard import __version__, bootstrap
from dockyard.config import Settings
from dockyard.domain.errors import DockyardError, Forbidden
from dockyard.entrypoints import git_http
from dockyard.entrypoints.deps import ErrorOut, denied
from dockyard.entrypoints.routes import (
    approvals,
    apps,
    audit,
    configuration,
    deploys,
    environments,
    gc,
    jobs,
    oneoff,
    repos,
    system,
    tokens,
    users,
    volumes,
    webhooks,
)


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
        responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 403: {"model": ErrorOut},
                   404: {"model": ErrorOut}},
    )

    @api.exception_handler(DockyardError)
    async def dockyard_error(request: Request, exc: DockyardError) -> JSONResponse:
        if isinstance(exc, Forbidden):  # every denial is audited
            await run_in_threadpool(denied, request, exc)
        return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=exc.status)

    for module in (system, apps, environments, approvals, deploys, jobs, tokens, users, volumes, configuration, gc,
                   audit, webhooks, repos, oneoff):
        api.include_router(module.router)
    api.include_router(configuration.key_router)
    api.include_router(volumes.backups_router)
    git_http.mount(api, settings)
    return api
