"""The store on a real SQLite file (schema by Alembic), and the job runner's worker threads on it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.adapters.sql_store import SqlStore
from dockyard.adapters.sql_users import hash_token
from dockyard.domain.errors import Conflict, DockyardError, NotFound
from dockyard.domain.model import App, Job, JobStatus, Token
from dockyard.services.jobs import JobRunner
from tests.support import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "dockyard.db"


@pytest.fixture
def store(db_path: Path) -> SqlStore:
    s = SqlStore(f"sqlite:///{db_path}")
    s.migrate()
    return s


# -- installation & migrations -------------------------------------------------------------------
def test_migrate_creates_the_file_and_is_idempotent(store: SqlStore, db_path: Path) -> None:
    assert db_path.is_file()
    installation = store.installation_id()
    assert len(installation) == 12 and installation == store.installation_id()
    store.create_app(App("kept"))
    again = SqlStore(f"sqlite:///{db_path}")
    again.migrate()  # a restart migrates again: nothing is lost
    assert again.installation_id() == installation
    assert [a.name for a in again.list_apps()] == ["kept"]


# -- tokens ---------------------------------------------------------------------------------------
def test_tokens_create_verify_revoke(store: SqlStore) -> None:
    assert store.token_count() == 0
    token = store.create_token("admin")
    ci = store.create_token("ci", role="deployer")
    assert token.startswith("dy_") and len(token) > 40 and token != ci
    assert store.token_count() == 2

    assert store.verify_token(token) == Token("admin", "admin", user="admin")
    assert store.verify_token(ci) == Token("ci", "deployer", user="ci")
    assert store.verify_token(token + "x") is None
    assert store.verify_token("") is None
    listed = {t.name: t for t in store.list_tokens()}
    assert set(listed) == {"admin", "ci"} and listed["ci"].role == "deployer" and listed["ci"].created_at is not None
    assert listed["admin"].last_used_at is not None  # verify records the use
    assert token not in repr(listed)

    with pytest.raises(Conflict):
        store.create_token("admin")
    store.revoke_token("admin")
    assert store.verify_token(token) is None
    assert store.verify_token(ci) == Token("ci", "deployer", user="ci")
    with pytest.raises(NotFound):
        store.revoke_token("admin")


def test_the_last_admin_cannot_be_demoted_or_removed(store: SqlStore) -> None:
    store.create_token("root")
    with pytest.raises(Conflict, match="last admin"):
        store.set_user_role("root", "developer")
    with pytest.raises(Conflict, match="last admin"):
        store.remove_user("root")
    store.create_user("second", "admin")
    store.set_user_role("root", "developer")  # another admin is left
    with pytest.raises(Conflict, match="last admin"):
        store.remove_user("second")
    with pytest.raises(NotFound):
        store.set_user_role("ghost", "admin")


def test_tokens_are_stored_hashed(store: SqlStore, db_path: Path) -> None:
    token = store.create_token("admin")
    store.verify_token(token)
    store.engine.dispose()  # close connections; the WAL may still hold the rows, so read every file
    files = [p for p in db_path.parent.iterdir() if p.name.startswith(db_path.name)]
    raw = b"".join(p.read_bytes() for p in files)
    assert hash_token(token).encode() in raw  # the check below looks where the token would be
    assert token.encode() not in raw
    assert token.removeprefix("dy_").encode() not in raw


# -- apps -----------------------------------------------------------------------------------------
def test_apps_crud(store: SqlStore) -> None:
    created = store.create_app(App("shop", deploy_branch="release", domains=("shop.example",)))
    assert (created.name, created.deploy_branch, created.domains) == ("shop", "release", ("shop.example",))
    assert created.created_at is not None and created.created_at.tzinfo is not None
    store.create_app(App("blog"))
    blog = store.get_app("blog")
    assert (blog.name, blog.deploy_branch, blog.domains) == ("blog", "main", ())
    assert [a.name for a in store.list_apps()] == ["blog", "shop"]

    updated = store.set_domains("shop", ("shop.example", "www.shop.example"))
    assert updated.domains == ("shop.example", "www.shop.example")
    assert store.get_app("shop").domains == ("shop.example", "www.shop.example")

    with pytest.raises(Conflict, match="already exists"):
        store.create_app(App("shop"))
    with pytest.raises(NotFound, match="no app named 'nope'"):
        store.get_app("nope")
    with pytest.raises(NotFound):
        store.set_domains("nope", ("x.example",))

    store.delete_app("shop")
    with pytest.raises(NotFound):
        store.get_app("shop")
    assert [a.name for a in store.list_apps()] == ["blog"]
    store.create_app(App("shop"))  # the name is free again
    assert store.get_app("shop").domains == ()


# -- jobs -----------------------------------------------------------------------------------------
def test_claim_next_takes_oldest_first_and_one_job_per_app(store: SqlStore) -> None:
    a1 = store.enqueue("deploy", "a", {"commit": "1"})
    a2 = store.enqueue("deploy", "a", {"commit": "2"})
    b1 = store.enqueue("deploy", "b", {"commit": "3"})
    assert (a1.status, a1.attempts, a1.payload) == (JobStatus.QUEUED, 0, {"commit": "1"})

    first = store.claim_next()
    assert first is not None and first.id == a1.id
    assert first.status == JobStatus.RUNNING and first.attempts == 1 and first.started_at is not None
    second = store.claim_next()
    assert second is not None and second.id == b1.id  # a2 waits: a1 of the same app runs
    assert store.claim_next() is None
    assert store.get_job(a2.id).status == JobStatus.QUEUED

    store.finish_job(a1.id, JobStatus.SUCCEEDED)
    done = store.get_job(a1.id)
    assert done.status == JobStatus.SUCCEEDED and done.status.finished and done.finished_at is not None
    third = store.claim_next()
    assert third is not None and third.id == a2.id
    assert store.claim_next() is None

    assert [j.id for j in store.list_jobs()] == [b1.id, a2.id, a1.id]  # newest first
    assert [j.id for j in store.list_jobs(app="a")] == [a2.id, a1.id]
    assert [j.id for j in store.list_jobs(limit=1)] == [b1.id]
    with pytest.raises(NotFound):
        store.get_job(9999)


def test_requeue_interrupted_puts_running_jobs_back(store: SqlStore) -> None:
    a = store.enqueue("deploy", "a", {})
    b = store.enqueue("deploy", "b", {})
    c = store.enqueue("deploy", "c", {})
    assert store.claim_next() is not None and store.claim_next() is not None  # a and b run
    store.finish_job(b.id, JobStatus.FAILED, "broke")

    assert store.requeue_interrupted(3) == ([a.id], [])  # only the one still running; b finished
    assert store.get_job(a.id).status == JobStatus.QUEUED
    assert store.get_job(b.id).status == JobStatus.FAILED and store.get_job(b.id).error == "broke"
    again = store.claim_next()
    assert again is not None and again.id == a.id and again.attempts == 2  # counted as a second attempt
    assert store.requeue_interrupted(3) == ([a.id], [])
    assert store.get_job(c.id).status == JobStatus.QUEUED
    assert store.requeue_interrupted(3) == ([], [])


def test_a_job_interrupted_too_often_fails_instead_of_looping(store: SqlStore) -> None:
    """A job that kills the server would be resumed at every start: a crash loop. After
    max_attempts interrupted attempts it fails, with the reason."""
    job = store.enqueue("deploy", "a", {})
    for attempt in (1, 2):
        claimed = store.claim_next()
        assert claimed is not None and claimed.attempts == attempt
        assert store.requeue_interrupted(3) == ([job.id], [])
    assert store.claim_next() is not None  # third attempt, interrupted as well
    assert store.requeue_interrupted(3) == ([], [job.id])
    failed = store.get_job(job.id)
    assert failed.status == JobStatus.FAILED and failed.finished_at is not None
    assert failed.error is not None and "3 times" in failed.error
    assert store.claim_next() is None


def test_job_logs_in_order_and_after(store: SqlStore) -> None:
    job = store.enqueue("deploy", "a", {})
    other = store.enqueue("deploy", "b", {})
    for line in ("one", "two", "three"):
        store.append_log(job.id, line)
    store.append_log(other.id, "not mine")
    logs = store.job_logs(job.id)
    assert [line for _, line in logs] == ["one", "two", "three"]
    ids = [i for i, _ in logs]
    assert ids == sorted(ids)
    assert store.job_logs(job.id, after=ids[0]) == logs[1:]
    assert store.job_logs(job.id, after=ids[-1]) == []
    store.append_log(job.id, "four")
    assert [line for _, line in store.job_logs(job.id, after=ids[-1])] == ["four"]


# -- the job runner -------------------------------------------------------------------------------
Say = Callable[[str], None]


class Handlers:
    """Job handlers that record which thread ran them."""

    def __init__(self) -> None:
        self.threads: dict[int, str] = {}
        self.release = threading.Event()
        self.release.set()

    def ok(self, job: Job, say: Say) -> None:
        self.threads[job.id] = threading.current_thread().name
        say(f"working on {job.payload.get('n', '?')}")
        assert self.release.wait(timeout=30)
        say("done")

    def refuse(self, job: Job, say: Say) -> None:
        self.threads[job.id] = threading.current_thread().name
        say("trying")
        raise DockyardError("the build failed", "fix the Dockerfile")

    def crash(self, job: Job, say: Say) -> None:
        self.threads[job.id] = threading.current_thread().name
        raise RuntimeError("boom")


@pytest.fixture
def handlers() -> Handlers:
    return Handlers()


@pytest.fixture
def runner(store: SqlStore, handlers: Handlers) -> Iterator[JobRunner]:
    r = JobRunner(store, {"ok": handlers.ok, "refuse": handlers.refuse, "crash": handlers.crash}, workers=1)
    yield r
    handlers.release.set()
    r.stop()
    for thread in r._threads:
        thread.join(timeout=10)
        assert not thread.is_alive(), f"{thread.name} did not stop"


def finished(store: SqlStore, job_id: int, timeout: float = 15) -> Job:
    return wait_until(lambda: (j := store.get_job(job_id)).status.finished and j, timeout, f"job {job_id} to finish")


def lines(store: SqlStore, job_id: int) -> list[str]:
    return [line for _, line in store.job_logs(job_id)]


def test_runner_runs_a_job_in_its_worker_thread(store: SqlStore, runner: JobRunner, handlers: Handlers) -> None:
    runner.start()
    job = runner.submit("ok", "a", {"n": "1"})
    done = finished(store, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.error is None and done.attempts == 1
    assert handlers.threads[job.id] == "job-worker-0"
    assert handlers.threads[job.id] != threading.current_thread().name
    assert lines(store, job.id) == ["working on 1", "done"]


def test_runner_records_failures_and_the_worker_survives(
    store: SqlStore, runner: JobRunner, handlers: Handlers
) -> None:
    runner.start()  # one worker: every job below runs on it, in turn
    refused = runner.submit("refuse", "a", {})
    crashed = runner.submit("crash", "b", {})
    unknown = runner.submit("no-such-kind", "c", {})
    after = runner.submit("ok", "d", {"n": "after"})

    job = finished(store, refused.id)
    assert job.status == JobStatus.FAILED
    assert job.error == "the build failed"  # the message, without the hint
    assert lines(store, refused.id) == ["trying", " !     the build failed", " !       hint: fix the Dockerfile"]

    job = finished(store, crashed.id)
    assert job.status == JobStatus.FAILED
    assert job.error == "internal error: RuntimeError('boom')"
    assert any("internal error: RuntimeError('boom')" in line for line in lines(store, crashed.id))

    job = finished(store, unknown.id)
    assert job.status == JobStatus.FAILED and job.error == "unknown job kind 'no-such-kind'"

    job = finished(store, after.id)
    assert job.status == JobStatus.SUCCEEDED
    assert handlers.threads[after.id] == handlers.threads[crashed.id] == "job-worker-0"


def test_runner_serialises_jobs_of_one_app(store: SqlStore, handlers: Handlers) -> None:
    runner = JobRunner(store, {"ok": handlers.ok}, workers=2)
    handlers.release.clear()  # "ok" jobs block until released
    runner.start()
    try:
        first = runner.submit("ok", "a", {"n": "a1"})
        second = runner.submit("ok", "a", {"n": "a2"})
        other = runner.submit("ok", "b", {"n": "b1"})
        wait_until(lambda: store.get_job(first.id).status == JobStatus.RUNNING
                   and store.get_job(other.id).status == JobStatus.RUNNING, 15, "a1 and b1 to run")
        assert store.get_job(second.id).status == JobStatus.QUEUED  # the second worker took b, not a2
        handlers.release.set()
        for job in (first, second, other):
            assert finished(store, job.id).status == JobStatus.SUCCEEDED
        a1, a2 = store.get_job(first.id), store.get_job(second.id)
        assert a1.finished_at is not None and a2.started_at is not None and a2.started_at >= a1.finished_at
    finally:
        handlers.release.set()
        runner.stop()
        for thread in runner._threads:
            thread.join(timeout=10)


def test_runner_resumes_jobs_interrupted_by_a_restart(store: SqlStore, runner: JobRunner) -> None:
    job = store.enqueue("ok", "a", {"n": "resumed"})
    claimed = store.claim_next()  # a previous server claimed it, then stopped
    assert claimed is not None and claimed.id == job.id
    runner.start()
    done = finished(store, job.id)
    assert done.status == JobStatus.SUCCEEDED and done.attempts == 2
    assert lines(store, job.id) == [
        "-----> dockyard restarted while this job ran; resuming it", "working on resumed", "done",
    ]
