"""Long work as persisted jobs: queued in the store, run by worker threads, resumed after a restart
(JobRunner); read back, with their logs, and a refused push recorded as one (Jobs)."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.domain import names
from dockyard.domain.errors import DockyardError
from dockyard.domain.model import DEFAULT_ENVIRONMENT, Job, JobStatus
from dockyard.ports import JobStore, Store
from dockyard.services.events import SERVER, Event, Events

log = logging.getLogger(__name__)
Handler = Callable[[Job, Callable[[str], None]], None]
Redactor = Callable[[str], Callable[[str], str]]  # app -> what cleans a line of its secrets' values


class JobRunner:
    def __init__(self, store: JobStore, handlers: dict[str, Handler], workers: int = 2,
                 max_attempts: int = 3, when_idle: Callable[[], None] | None = None,
                 redactor: Redactor | None = None, events: Events | None = None) -> None:
        self.store = store
        self.events = events  # told when a job ends: ``deploy.succeeded``, ``rollback.failed``...
        self.redactor = redactor  # every line a job says is cleaned of the app's secret values
        self.when_idle = when_idle  # e.g. give memory back to the system once no job runs
        self.max_attempts = max_attempts
        self.handlers = handlers
        self.workers = workers
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        again, failed = self.store.requeue_interrupted(self.max_attempts)
        for job_id in again:
            self.store.append_log(job_id, "-----> dockyard restarted while this job ran; resuming it")
        for job_id in failed:
            self.store.append_log(job_id, f" !     dockyard stopped while this job ran, {self.max_attempts} times: "
                                          "not tried again (it may be what stops the server; see the server log)")
            log.error("job %s failed: interrupted %s times", job_id, self.max_attempts)
        for i in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"job-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; give running ones ``timeout`` seconds. One still running then stays
        marked running, and the next start resumes it."""
        self._stop.set()
        self.notify()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def submit(self, kind: str, app: str, payload: dict[str, str], environment: str = DEFAULT_ENVIRONMENT) -> Job:
        job = self.store.enqueue(kind, app, payload, environment)
        self.notify()
        return job

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.store.claim_next()
                if job is None:
                    with self._wake:
                        self._wake.wait(timeout=1.0)
                    continue
                self.run(job)
                self.notify()  # a job of the same app may be waiting for this one
                if self.when_idle is not None and self.store.running_count() == 0:
                    self.when_idle()
            except Exception:  # the store failed (locked, disk full): keep the worker alive
                log.error("job worker:\n%s", traceback.format_exc())
                self._stop.wait(1.0)

    def run(self, job: Job) -> None:
        clean = self.redactor(job.app) if self.redactor is not None else _unchanged

        def say(line: str) -> None:
            self.store.append_log(job.id, clean(line))

        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise DockyardError(f"unknown job kind {job.kind!r}")
            handler(job, say)
        except Exception as exc:
            if self._stop.is_set():  # interrupted by a shutdown: left running, resumed at the next start
                log.warning("job %s interrupted by shutdown (%s); it resumes at the next start", job.id, clean(str(exc)))
                return
            self._fail(job, exc, say, clean)
            self._ended(job, JobStatus.FAILED, clean(exc.message if isinstance(exc, DockyardError) else repr(exc)))
        else:
            self.store.finish_job(job.id, JobStatus.SUCCEEDED)
            self._ended(job, JobStatus.SUCCEEDED)

    def _ended(self, job: Job, status: JobStatus, error: str = "") -> None:
        """``KIND.succeeded`` or ``KIND.failed``, by whoever asked for the job, with its release."""
        if self.events is None:
            return
        detail: dict[str, object] = {"job": job.id}
        detail.update({k: job.payload[k] for k in ("commit", "branch", "pusher") if k in job.payload})
        if "release" in job.payload:  # a rollback's: the release it returns to
            detail["to"] = int(job.payload["release"])
        release = self.store.release_of_job(job.id)
        if release is not None:
            detail["release"] = release
        if error:
            detail["error"] = _cut(error)
        self.events.publish(Event(f"{job.kind}.{status.value}", job.payload.get("actor") or SERVER, SERVER, job.app,
                                  job.environment, detail))

    def _fail(self, job: Job, exc: Exception, say: Callable[[str], None],
              clean: Callable[[str], str] | None = None) -> None:
        clean = clean or _unchanged
        if isinstance(exc, DockyardError):
            for line in str(exc).splitlines():
                say(f" !     {_cut(clean(line))}")  # cleaned before it is cut: no half of a value is left
            self.store.finish_job(job.id, JobStatus.FAILED, _cut(clean(exc.message)))
        else:  # a bug: keep the worker alive, record the failure
            log.error("job %s crashed:\n%s", job.id, clean("".join(traceback.format_exception(exc))))
            say(f" !     internal error: {exc!r} (the server log has the traceback)")
            self.store.finish_job(job.id, JobStatus.FAILED, clean(f"internal error: {exc!r}"))


@dataclass
class Jobs:
    """Jobs as callers read them: listed, shown, their logs."""

    store: Store

    def list_jobs(self, app: str | None = None, limit: int = 50) -> list[Job]:
        """Newest first, of one app or of all."""
        return self.store.list_jobs(names.app_name(app) if app else None, limit=limit)

    def get(self, job_id: int) -> Job:
        return self.store.get_job(job_id)

    def logs(self, job_id: int, after: int = 0) -> list[tuple[int, str]]:
        """(line id, line) of the job's log after line id ``after``, oldest first."""
        return self.store.job_logs(job_id, after)

    def record_refused_push(self, app: str, ref: str, reason: str, actor: str) -> Job:
        """A push the git hook refused, as a failed job, so that the API shows why."""
        owner = self.store.get_app(names.app_name(app))
        ref, reason = ref[:200], reason[:2000]
        return self.store.record_failed_job("push", owner.name, {"ref": ref, "actor": actor}, reason,
                                            f" !     push to {ref} rejected: {reason}")


def _unchanged(line: str) -> str:
    return line


MAX_ERROR_CHARS = 2000  # an engine's message can quote a whole 50,000-line RUN step


def _cut(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` within ``limit`` characters, its start and its end kept (an engine's message
    ends with what went wrong)."""
    if len(text) <= limit:
        return text
    half = (limit - 40) // 2
    return f"{text[:half]} … ({len(text) - 2 * half} characters left out) … {text[-half:]}"
