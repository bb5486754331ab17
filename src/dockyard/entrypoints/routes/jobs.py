"""Jobs: builds and deploys as persisted jobs, and their logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from dockyard import bootstrap
from dockyard.domain.access import Action
from dockyard.domain.model import Job
from dockyard.entrypoints.deps import Authenticated, PlatformDep, Reader, authorize
from dockyard.services.events import Event

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


class JobOut(BaseModel):
    id: int
    kind: str
    app: str
    environment: str
    status: str
    payload: dict[str, str]
    error: str | None
    attempts: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


def job_out(job: Job) -> JobOut:
    return JobOut(id=job.id, kind=job.kind, app=job.app, environment=job.environment, status=str(job.status),
                  payload=job.payload,
                  error=job.error, attempts=job.attempts, created_at=job.created_at,
                  started_at=job.started_at, finished_at=job.finished_at)


def queued(p: bootstrap.Platform, job: Job, source: str) -> JobOut:
    """A job just queued, told to the audit log (``deploy.queued``, ``rollback.queued``,
    ``scale.queued``: by whoever asked, from ``source``), and answered."""
    detail: dict[str, object] = {"job": job.id}
    detail.update({k: job.payload[k] for k in ("commit", "branch", "release", "force") if k in job.payload})
    if "counts" in job.payload:
        detail["replicas"] = json.loads(job.payload["counts"])
    p.events.publish(Event(f"{job.kind}.queued", job.payload.get("actor", ""), source, job.app, job.environment,
                           detail))
    return job_out(job)


@router.get("")
def list_jobs(p: PlatformDep, _: Reader, app: str | None = None) -> list[JobOut]:
    return [job_out(j) for j in p.jobs.list_jobs(app)]


@router.get("/{job_id}")
def get_job(job_id: int, p: PlatformDep, _: Reader) -> JobOut:
    return job_out(p.jobs.get(job_id))


@router.get("/{job_id}/logs", response_class=StreamingResponse)
def job_logs(job_id: int, p: PlatformDep, who: Authenticated, follow: bool = False, after: int = 0) -> StreamingResponse:
    """The job's log; with `follow`, streams until the job ends, then a final status line."""
    authorize(who, Action.READ_JOB_LOG, p.jobs.get(job_id).app)

    async def lines() -> AsyncIterator[str]:
        # async: a follower waits on the event loop, not on one of the server's threads
        last = after
        while True:
            done = (await run_in_threadpool(p.jobs.get, job_id)).status.finished
            for line_id, line in await run_in_threadpool(p.jobs.logs, job_id, last):
                last = line_id
                yield line + "\n"
            if done or not follow:
                break
            await asyncio.sleep(0.1)
        if follow:
            job = await run_in_threadpool(p.jobs.get, job_id)
            yield f"=====> job {job.id} {job.status}\n"

    return StreamingResponse(lines(), media_type="text/plain")
