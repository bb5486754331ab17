"""Long work as persisted jobs: queued in the store, run by worker threads, resumed after a restart."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain.errors import DockyardError
from dockyard.domain.model import Job, JobStatus

log = logging.getLogger(__name__)
Handler = Callable[[Job, Callable[[str], None]], None]


class JobRunner:
    def __init__(self, store: SqlStore, handlers: dict[str, Handler], workers: int = 2) -> None:
        self.store = store
        self.handlers = handlers
        self.workers = workers
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for job_id in self.store.requeue_interrupted():
            self.store.append_log(job_id, "-----> dockyard restarted while this job ran; resuming it")
        for i in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"job-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.notify()

    def notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def submit(self, kind: str, app: str, payload: dict[str, str]) -> Job:
        job = self.store.enqueue(kind, app, payload)
        self.notify()
        return job

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            self.run(job)
            self.notify()  # a job of the same app may be waiting for this one

    def run(self, job: Job) -> None:
        def say(line: str) -> None:
            self.store.append_log(job.id, line)

        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise DockyardError(f"unknown job kind {job.kind!r}")
            handler(job, say)
        except DockyardError as exc:
            for line in str(exc).splitlines():
                say(f" !     {line}")
            self.store.finish_job(job.id, JobStatus.FAILED, exc.message)
        except Exception as exc:  # a bug: keep the worker alive, record the failure
            log.error("job %s crashed:\n%s", job.id, traceback.format_exc())
            say(f" !     internal error: {exc!r} (the server log has the traceback)")
            self.store.finish_job(job.id, JobStatus.FAILED, f"internal error: {exc!r}")
        else:
            self.store.finish_job(job.id, JobStatus.SUCCEEDED)
