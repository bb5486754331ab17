"""One suite, two stores: the in-memory FakeStore the unit tests use and SqlStore on a real SQLite
file (schema by Alembic) keep the same contract: the same results, orderings and errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain.errors import Conflict, NotFound
from dockyard.domain.model import (
    App,
    BuiltImage,
    Environment,
    JobStatus,
    ReleaseStatus,
    SealedSecret,
    ServiceSpec,
    SourceRepo,
    Token,
)
from dockyard.domain.records import ReleaseRecord
from dockyard.fakes import FakeStore

pytestmark = pytest.mark.integration

AnyStore = FakeStore | SqlStore


@pytest.fixture(params=["fake", "sql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AnyStore:
    if request.param == "fake":
        return FakeStore()
    s = SqlStore(f"sqlite:///{tmp_path / 'd.db'}")
    s.migrate()
    return s


def sealer(text: str, key: str = "k1") -> Callable[[int], tuple[str, bytes]]:
    return lambda version: (key, f"{text}@{version}".encode())


def image(app: str, version: str) -> BuiltImage:
    return BuiltImage(app=app, repository=f"{app}/web", version=version, tag=version, digest=f"sha256:m{version}",
                      image_id=f"sha256:i{version}", commit="c" * 40, size=123, dockerfile="Dockerfile")


# -- apps -----------------------------------------------------------------------------------------
def test_apps_create_get_list_update(store: AnyStore) -> None:
    created = store.create_app(App("shop", deploy_branch="release", domains=("shop.example",)))
    assert (created.name, created.deploy_branch, created.domains, created.host_access) == (
        "shop", "release", ("shop.example",), ())
    assert created.created_at is not None and created.created_at.tzinfo is not None
    assert store.get_app("shop") == created
    store.create_app(App("blog"))
    store.create_app(App("api"))
    assert [a.name for a in store.list_apps()] == ["api", "blog", "shop"]
    assert store.set_domains("shop", ("a.example", "b.example")).domains == ("a.example", "b.example")
    assert store.set_host_access("shop", ("privileged",)).host_access == ("privileged",)
    assert store.get_app("shop").domains == ("a.example", "b.example")


def test_apps_errors(store: AnyStore) -> None:
    store.create_app(App("shop"))
    with pytest.raises(Conflict, match="app 'shop' already exists"):
        store.create_app(App("shop", deploy_branch="other"))
    assert store.get_app("shop").deploy_branch == "main"
    with pytest.raises(NotFound, match="no app named 'nope'"):
        store.get_app("nope")
    with pytest.raises(NotFound, match="no app named 'nope'"):
        store.set_domains("nope", ("x.example",))
    with pytest.raises(NotFound, match="no app named 'nope'"):
        store.set_host_access("nope", ())
    store.delete_app("nope")  # nothing to delete: no error


def test_deleting_an_app_takes_its_records_and_no_one_elses(store: AnyStore) -> None:
    for name in ("shop", "blog"):
        store.create_app(App(name))
        job = store.enqueue("deploy", name, {"commit": name})
        store.append_log(job.id, f"{name} log")
        store.add_image(image(name, "1"))
        store.create_release(name, "production", "a" * 40, job.id)
        store.set_variables(name, "production", {"A": name})
        store.add_secret(name, "production", "token", sealer(name))
    shop_job = store.list_jobs(app="shop")[0]
    store.delete_app("shop")

    with pytest.raises(NotFound):
        store.get_app("shop")
    assert [a.name for a in store.list_apps()] == ["blog"]
    assert store.list_jobs(app="shop") == [] and store.job_logs(shop_job.id) == []
    assert store.list_images("shop") == [] and store.list_releases("shop") == []
    assert store.variables("shop", "production") == {} and store.secrets("shop", "production") == []
    blog_job = store.list_jobs(app="blog")[0]
    assert [line for _, line in store.job_logs(blog_job.id)] == ["blog log"]
    assert len(store.list_images("blog")) == 1 and len(store.list_releases("blog")) == 1
    assert store.variables("blog", "production") == {"A": "blog"}
    assert [s.app for s in store.sealed_secrets()] == ["blog"]

    store.create_app(App("shop"))  # afresh
    assert store.list_jobs(app="shop") == [] and store.list_releases("shop") == []
    assert store.add_secret("shop", "production", "token", sealer("new")).version == 1


# -- jobs -----------------------------------------------------------------------------------------
def test_enqueue_and_get(store: AnyStore) -> None:
    payload = {"commit": "1"}
    job = store.enqueue("deploy", "a", payload)
    payload["commit"] = "changed"  # the store keeps its own copy
    assert (job.kind, job.app, job.status, job.attempts, job.payload, job.error) == (
        "deploy", "a", JobStatus.QUEUED, 0, {"commit": "1"}, None)
    assert job.created_at is not None and job.created_at.tzinfo is not None
    assert (job.started_at, job.finished_at) == (None, None)
    assert store.get_job(job.id) == job
    with pytest.raises(NotFound, match="no job 9999"):
        store.get_job(9999)


def test_claim_next_takes_oldest_first_and_one_job_per_app(store: AnyStore) -> None:
    assert store.claim_next() is None
    a1 = store.enqueue("deploy", "a", {"commit": "1"})
    a2 = store.enqueue("deploy", "a", {"commit": "2"})
    b1 = store.enqueue("deploy", "b", {"commit": "3"})
    assert a1.id < a2.id < b1.id

    first = store.claim_next()
    assert first is not None and first.id == a1.id
    assert (first.status, first.attempts) == (JobStatus.RUNNING, 1) and first.started_at is not None
    assert store.running_count() == 1
    second = store.claim_next()
    assert second is not None and second.id == b1.id  # a2 waits: a1 of the same app runs
    assert store.claim_next() is None
    assert store.running_count() == 2
    assert store.get_job(a2.id).status == JobStatus.QUEUED

    store.finish_job(a1.id, JobStatus.SUCCEEDED)
    done = store.get_job(a1.id)
    assert done.status == JobStatus.SUCCEEDED and done.finished_at is not None and done.error is None
    assert store.running_count() == 1
    third = store.claim_next()
    assert third is not None and third.id == a2.id
    store.finish_job(b1.id, JobStatus.FAILED, "broke")
    assert (store.get_job(b1.id).status, store.get_job(b1.id).error) == (JobStatus.FAILED, "broke")
    assert store.claim_next() is None

    assert [j.id for j in store.list_jobs()] == [b1.id, a2.id, a1.id]  # newest first
    assert [j.id for j in store.list_jobs(app="a")] == [a2.id, a1.id]
    assert [j.id for j in store.list_jobs(limit=1)] == [b1.id]
    store.finish_job(9999, JobStatus.SUCCEEDED)  # an unknown job: nothing happens


def test_environments_of_one_app_run_jobs_side_by_side_one_at_a_time_each(store: AnyStore) -> None:
    p1 = store.enqueue("deploy", "a", {"commit": "1"})
    p2 = store.enqueue("deploy", "a", {"commit": "2"})
    r1 = store.enqueue("deploy", "a", {"commit": "1"}, environment="recette")
    assert (p1.environment, r1.environment) == ("production", "recette")
    assert [j.id for j in (store.claim_next(), store.claim_next())] == [p1.id, r1.id]  # p2 waits for p1
    assert store.claim_next() is None
    assert [j.id for j in store.list_jobs("a", environment="recette")] == [r1.id]
    assert store.pending_deploy("a", "1", "recette") == store.get_job(r1.id)
    assert store.pending_deploy("a", "2", "recette") is None
    assert store.pending_deploy("a", "2") == store.get_job(p2.id)
    store.finish_job(p1.id, JobStatus.SUCCEEDED)
    nxt = store.claim_next()
    assert nxt is not None and nxt.id == p2.id


def test_environments_are_added_listed_and_removed_with_what_is_theirs(store: AnyStore) -> None:
    store.create_app(App("shop"))
    assert [(e.name, e.target, e.branch) for e in store.environments("shop")] == [("production", "local", None)]
    recette = store.add_environment(Environment("shop", "recette", branch="develop"))
    assert (recette.app, recette.name, recette.branch) == ("shop", "recette", "develop")
    assert recette.created_at is not None and recette.created_at.tzinfo is not None
    store.add_environment(Environment("shop", "dev"))
    assert [e.name for e in store.environments("shop")] == ["production", "dev", "recette"]  # production first
    with pytest.raises(Conflict, match="recette"):
        store.add_environment(Environment("shop", "recette"))
    with pytest.raises(NotFound, match="no app"):
        store.add_environment(Environment("nobody", "recette"))
    with pytest.raises(NotFound, match="no environment 'qa'"):
        store.get_environment("shop", "qa")
    assert store.set_environment_branch("shop", "dev", "feature/x").branch == "feature/x"
    with pytest.raises(NotFound):
        store.set_environment_branch("shop", "qa", "x")
    assert store.get_environment("shop", "dev").replicas == ()
    assert store.set_environment_replicas("shop", "dev", {"web": 3, "api": 0}).replicas == (("api", 0), ("web", 3))
    assert store.get_environment("shop", "dev").replicas == (("api", 0), ("web", 3))  # kept, sorted
    assert store.get_environment("shop", "recette").replicas == ()  # per environment
    with pytest.raises(NotFound):
        store.set_environment_replicas("shop", "qa", {"web": 1})

    for env in ("production", "recette"):
        store.set_variables("shop", env, {"MODE": env})
        store.add_secret("shop", env, "token", sealer(env))
        live = store.create_release("shop", env, "c" * 40, None)
        store.set_release(live, ReleaseStatus.LIVE)
    assert [r.environment for r in store.list_releases("shop", environment="recette")] == ["recette"]
    assert len(store.list_releases("shop")) == 2
    store.remove_environment("shop", "recette")
    assert [e.name for e in store.environments("shop")] == ["production", "dev"]
    assert store.variables("shop", "recette") == {} and store.secrets("shop", "recette") == []
    assert store.live_release("shop", "recette") is None
    assert store.variables("shop", "production") == {"MODE": "production"}  # production keeps its own
    assert [s.name for s in store.secrets("shop", "production")] == ["token"]
    assert store.live_release("shop", "production") is not None
    with pytest.raises(NotFound):
        store.remove_environment("shop", "recette")
    store.add_environment(Environment("shop", "recette"))  # and it can come back, empty
    assert store.secrets("shop", "recette") == []
    store.delete_app("shop")
    assert store.environments("shop") == []


def test_pending_deploy_and_a_recorded_failure(store: AnyStore) -> None:
    queued = store.enqueue("deploy", "a", {"commit": "c1"})
    store.enqueue("build", "a", {"commit": "c2"})
    pending = store.pending_deploy("a", "c1")
    assert pending is not None and pending.id == queued.id
    assert store.pending_deploy("a", "c2") is None and store.pending_deploy("b", "c1") is None
    failed = store.record_failed_job("deploy", "a", {"commit": "c3"}, "refused", "the push was refused")
    assert (failed.status, failed.error, failed.attempts) == (JobStatus.FAILED, "refused", 0)
    assert failed.finished_at is not None
    assert [line for _, line in store.job_logs(failed.id)] == ["the push was refused"]
    assert store.pending_deploy("a", "c3") is None


def test_requeue_interrupted_puts_running_jobs_back_up_to_max_attempts(store: AnyStore) -> None:
    a = store.enqueue("deploy", "a", {})
    b = store.enqueue("deploy", "b", {})
    c = store.enqueue("deploy", "c", {})
    assert store.claim_next() is not None and store.claim_next() is not None  # a and b run
    store.finish_job(b.id, JobStatus.FAILED, "broke")
    assert store.requeue_interrupted(3) == ([a.id], [])  # only the one still running
    assert store.get_job(a.id).status == JobStatus.QUEUED and store.running_count() == 0
    assert store.get_job(b.id).error == "broke"

    again = store.claim_next()
    assert again is not None and again.id == a.id and again.attempts == 2
    assert store.requeue_interrupted(3) == ([a.id], [])
    third = store.claim_next()
    assert third is not None and third.id == a.id and third.attempts == 3
    assert store.claim_next() is not None  # c, attempt 1
    assert store.requeue_interrupted(3) == ([c.id], [a.id])
    failed = store.get_job(a.id)
    assert failed.status == JobStatus.FAILED and failed.finished_at is not None
    assert failed.error == "dockyard stopped while this job ran, 3 times: it is not tried again"
    assert store.requeue_interrupted(3) == ([], [])
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == c.id and store.claim_next() is None


def test_job_logs_in_order_and_after_an_id(store: AnyStore) -> None:
    job = store.enqueue("deploy", "a", {})
    other = store.enqueue("deploy", "b", {})
    for line in ("one", "two", "three"):
        store.append_log(job.id, line)
    store.append_log(other.id, "not mine")
    logs = store.job_logs(job.id)
    assert [line for _, line in logs] == ["one", "two", "three"]
    ids = [i for i, _ in logs]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert store.job_logs(job.id, after=ids[0]) == logs[1:]
    assert store.job_logs(job.id, after=ids[-1]) == []
    store.append_log(job.id, "four")
    assert [line for _, line in store.job_logs(job.id, after=ids[-1])] == ["four"]
    assert [line for _, line in store.job_logs(other.id)] == ["not mine"]


# -- images ---------------------------------------------------------------------------------------
def test_images_newest_first_per_app(store: AnyStore) -> None:
    store.add_image(image("shop", "0.1"))
    store.add_image(image("blog", "0.1"))
    store.add_image(image("shop", "0.2"))
    listed = store.list_images("shop")
    assert [i.version for i in listed] == ["0.2", "0.1"]
    assert all(i.created_at is not None and i.created_at.tzinfo is not None for i in listed)
    assert replace(listed[0], created_at=None) == image("shop", "0.2")
    assert store.list_images("nope") == []


def test_images_keep_what_names_them_and_where_they_came_from(store: AnyStore) -> None:
    plain = image("shop", "0.1")  # the app's own repo: no header name, no repo, no branch
    built = replace(image("shop", "0.2+gabc"), tag="0.2_gabc", name="registry.example.com/crigen/api",
                    source_version="0.2", repo="api", branch="feature/x")
    store.add_image(plain)
    store.add_image(built)
    newest, oldest = store.list_images("shop")
    assert replace(newest, created_at=None) == built
    assert (newest.name, newest.source_version, newest.repo, newest.branch) == (
        "registry.example.com/crigen/api", "0.2", "api", "feature/x")
    assert replace(oldest, created_at=None) == plain
    assert (oldest.name, oldest.source_version, oldest.repo, oldest.branch) == ("", "", "", "")


# -- repos ----------------------------------------------------------------------------------------
def test_repos_added_listed_in_order_and_removed(store: AnyStore) -> None:
    store.create_app(App("shop"))
    added = store.add_repo(SourceRepo("shop", "base-container-images", "source"))
    assert (added.app, added.name, added.role) == ("shop", "base-container-images", "source")
    assert added.created_at is not None and added.created_at.tzinfo is not None
    assert store.get_repo("shop", "base-container-images") == added
    store.add_repo(SourceRepo("shop", "api", "source"))
    store.add_repo(SourceRepo("shop", "compose-containers", "deploy"))
    store.add_repo(SourceRepo("shop", "vitrine", "source"))
    assert [(r.name, r.role) for r in store.repos("shop")] == [  # in the order they were added
        ("base-container-images", "source"), ("api", "source"), ("compose-containers", "deploy"),
        ("vitrine", "source")]
    assert store.repos("nope") == []

    store.remove_repo("shop", "api")
    assert [r.name for r in store.repos("shop")] == ["base-container-images", "compose-containers", "vitrine"]
    with pytest.raises(NotFound, match="shop has no repo named 'api'"):
        store.get_repo("shop", "api")
    store.add_repo(SourceRepo("shop", "api", "source"))  # again, after the others
    assert [r.name for r in store.repos("shop")] == ["base-container-images", "compose-containers", "vitrine", "api"]


def test_repos_errors(store: AnyStore) -> None:
    store.create_app(App("shop"))
    store.create_app(App("blog"))
    store.add_repo(SourceRepo("shop", "api", "source"))
    store.add_repo(SourceRepo("shop", "stack", "deploy"))
    with pytest.raises(Conflict, match="shop has a repo named 'api' already") as info:
        store.add_repo(SourceRepo("shop", "api", "source"))
    assert info.value.hint
    with pytest.raises(Conflict):  # a name taken and a second deploy repo at once: refused either way
        store.add_repo(SourceRepo("shop", "api", "deploy"))
    with pytest.raises(Conflict, match="shop has a deploy repo already"):
        store.add_repo(SourceRepo("shop", "stack2", "deploy"))
    assert [(r.name, r.role) for r in store.repos("shop")] == [("api", "source"), ("stack", "deploy")]
    store.add_repo(SourceRepo("blog", "api", "source"))  # names and the deploy repo are per app
    with pytest.raises(Conflict, match="blog has a repo named 'api' already"):
        store.add_repo(SourceRepo("blog", "api", "deploy"))  # a name taken, whatever the role
    store.add_repo(SourceRepo("blog", "stack", "deploy"))
    with pytest.raises(NotFound, match="shop has no repo named 'nope'"):
        store.get_repo("shop", "nope")
    with pytest.raises(NotFound, match="shop has no repo named 'nope'"):
        store.remove_repo("shop", "nope")
    with pytest.raises(NotFound, match="nope has no repo named 'api'"):
        store.get_repo("nope", "api")
    store.remove_repo("shop", "stack")
    store.add_repo(SourceRepo("shop", "stack2", "deploy"))  # the deploy repo once the last is gone
    assert [(r.name, r.role) for r in store.repos("shop")] == [("api", "source"), ("stack2", "deploy")]


def test_deleting_an_app_takes_its_repos_and_no_one_elses(store: AnyStore) -> None:
    for app in ("shop", "blog"):
        store.create_app(App(app))
        store.add_repo(SourceRepo(app, "api", "source"))
        store.add_repo(SourceRepo(app, "stack", "deploy"))
    store.delete_app("shop")
    assert store.repos("shop") == []
    with pytest.raises(NotFound):
        store.get_repo("shop", "api")
    assert [(r.app, r.name) for r in store.repos("blog")] == [("blog", "api"), ("blog", "stack")]

    store.create_app(App("shop"))  # afresh: the names are free again
    store.add_repo(SourceRepo("shop", "api", "source"))
    store.add_repo(SourceRepo("shop", "stack", "deploy"))
    assert [r.name for r in store.repos("shop")] == ["api", "stack"]


# -- releases -------------------------------------------------------------------------------------
def test_a_release_is_created_pending_and_set(store: AnyStore) -> None:
    release = store.create_release("shop", "production", "a" * 40, 7)
    [row] = store.list_releases("shop")
    assert isinstance(row, ReleaseRecord)  # a model object, never a row or a dict
    assert (row.id, row.app, row.environment, row.commit, row.status, row.services, row.job_id, row.error,
            row.finished_at, row.config, row.artifact) == (
        release, "shop", "production", "a" * 40, ReleaseStatus.PENDING, (), 7, None, None, {}, ())
    assert row.created_at is not None and row.created_at.tzinfo is not None

    web = ServiceSpec(name="web", image="r/shop@sha256:1", port=8000, hosts=("shop.example",),
                      environment=(("A", "1"),), command=("serve", "--port", "8000"), secrets=(("token", 2),))
    store.set_release(release, ReleaseStatus.LIVE, services=(web,))
    store.set_release_config(release, {"variables": ["A"], "secrets": {"token": 2}})
    live = store.live_release("shop", "production")
    assert live is not None and live.id == release and live.status == ReleaseStatus.LIVE
    assert live.finished_at is not None and live.finished_at.tzinfo is not None
    assert live.config == {"variables": ["A"], "secrets": {"token": 2}}
    assert live.services == (web,) and live.services[0].spec_hash == web.spec_hash  # read back whole
    assert live.hosts == ("shop.example",)
    assert live.as_dict()["services"][0]["hosts"] == ("shop.example",)  # the shape answers give as JSON

    store.set_release(release, ReleaseStatus.FAILED, error="it broke")
    row = store.list_releases("shop")[0]
    assert (row.status, row.error, len(row.services)) == (ReleaseStatus.FAILED, "it broke", 1)
    store.set_release(release, ReleaseStatus.FAILED)  # the error goes with each change
    assert store.list_releases("shop")[0].error is None
    assert store.live_release("shop", "production") is None
    store.set_release(9999, ReleaseStatus.LIVE)  # an unknown release: nothing happens
    store.set_release_config(9999, {})


def test_live_release_is_per_app_and_environment_and_superseded(store: AnyStore) -> None:
    r1 = store.create_release("shop", "production", "1" * 40, None)
    r2 = store.create_release("shop", "staging", "2" * 40, None)
    r3 = store.create_release("blog", "production", "3" * 40, None)
    for r in (r1, r2, r3):
        store.set_release(r, ReleaseStatus.LIVE)
    r4 = store.create_release("shop", "production", "4" * 40, None)
    assert getattr(store.live_release("shop", "production"), "id", None) == r1  # r4 is pending
    store.set_release(r4, ReleaseStatus.LIVE)
    assert getattr(store.live_release("shop", "production"), "id", None) == r4  # the newest live one
    store.supersede("shop", "production", r4)
    statuses = {r.id: r.status for r in store.list_releases("shop")}
    assert statuses == {r1: ReleaseStatus.SUPERSEDED, r2: ReleaseStatus.LIVE, r4: ReleaseStatus.LIVE}
    assert getattr(store.live_release("shop", "staging"), "id", None) == r2
    assert getattr(store.live_release("blog", "production"), "id", None) == r3
    assert store.live_release("shop", "nowhere") is None and store.live_release("nope", "production") is None

    assert [r.id for r in store.list_releases("shop")] == [r4, r2, r1]  # newest first
    assert store.get_release(r2) == store.list_releases("shop", environment="staging")[0]
    with pytest.raises(NotFound, match="no release 9999"):
        store.get_release(9999)
    assert [r.id for r in store.list_releases("shop", limit=2)] == [r4, r2]


# -- tokens ---------------------------------------------------------------------------------------
def test_tokens_create_verify_revoke(store: AnyStore) -> None:
    assert store.token_count() == 0 and store.list_tokens() == []
    token = store.create_token("admin")
    ci = store.create_token("ci", role="deployer")
    assert token.startswith("dy_") and len(token) > 40 and token != ci
    assert store.token_count() == 2
    assert store.verify_token(token) == Token("admin", "admin", user="admin")
    assert store.verify_token(ci) == Token("ci", "deployer", user="ci")
    assert store.verify_token(token + "x") is None and store.verify_token("") is None

    listed = store.list_tokens()
    assert [(t.name, t.role) for t in listed] == [("admin", "admin"), ("ci", "deployer")]
    assert listed[0].last_used_at is not None and listed[0].last_used_at.tzinfo is not None
    assert listed[0].created_at is not None and listed[0].created_at.tzinfo is not None
    assert token not in repr(listed)

    with pytest.raises(Conflict, match="a token named 'admin' exists"):
        store.create_token("admin")
    store.revoke_token("admin")
    assert store.verify_token(token) is None and store.verify_token(ci) == Token("ci", "deployer", user="ci")
    assert store.token_count() == 1
    with pytest.raises(NotFound, match="no token named 'admin'"):
        store.revoke_token("admin")


def test_users_hold_tokens_and_the_last_admin_stays(store: AnyStore) -> None:
    store.create_token("root")  # the first admin: user root
    assert store.create_user("alice", "developer").name == "alice"
    laptop = store.create_token("alice-laptop", user="alice")
    assert store.verify_token(laptop) == Token("alice-laptop", "developer", user="alice")
    assert {u.name: (u.role, u.tokens) for u in store.list_users()} == {"alice": ("developer", 1), "root": ("admin", 1)}
    store.set_user_role("alice", "approver")
    assert store.verify_token(laptop) == Token("alice-laptop", "approver", user="alice")
    with pytest.raises(NotFound):
        store.create_token("x", user="nobody")
    with pytest.raises(Conflict):
        store.create_user("alice", "admin")
    with pytest.raises(Conflict, match="exists with role approver"):  # a token never promotes its user
        store.create_token("alice", "admin")
    with pytest.raises(Conflict, match="last admin"):
        store.remove_user("root")
    with pytest.raises(Conflict, match="last admin"):
        store.set_user_role("root", "developer")
    store.remove_user("alice")
    assert store.verify_token(laptop) is None and [t.name for t in store.list_tokens()] == ["root"]
    with pytest.raises(NotFound):
        store.set_user_role("alice", "admin")


def test_installation_id_is_kept(store: AnyStore) -> None:
    installation = store.installation_id()
    assert len(installation) == 12 and store.installation_id() == installation


# -- variables and secrets ------------------------------------------------------------------------
def test_variables_set_unset_list_scoped(store: AnyStore) -> None:
    assert store.set_variables("shop", "production", {"B": "2", "A": "1"}) == {"A": "1", "B": "2"}
    assert list(store.variables("shop", "production")) == ["A", "B"]  # by name
    store.set_variables("shop", "staging", {"A": "staging"})
    store.set_variables("blog", "production", {"A": "blog"})
    assert store.set_variables("shop", "production", {"A": "one", "B": None, "GONE": None}) == {"A": "one"}
    assert store.variables("shop", "production") == {"A": "one"}
    assert store.variables("shop", "staging") == {"A": "staging"}
    assert store.variables("blog", "production") == {"A": "blog"}
    assert store.set_variables("shop", "production", {"A": None}) == {}
    assert store.variables("shop", "nowhere") == {}


def test_secret_versions(store: AnyStore) -> None:
    first = store.add_secret("shop", "production", "token", sealer("one"))
    assert (first.app, first.environment, first.name, first.version, first.versions, first.key_id) == (
        "shop", "production", "token", 1, 1, "k1")
    second = store.add_secret("shop", "production", "token", sealer("two", "k2"))
    assert (second.version, second.versions, second.key_id) == (2, 2, "k2")
    assert second.created_at == first.created_at and second.updated_at is not None
    assert second.updated_at >= second.created_at  # type: ignore[operator]
    store.add_secret("shop", "staging", "token", sealer("staging"))
    store.add_secret("shop", "production", "db", sealer("db"))
    store.add_secret("blog", "production", "db", sealer("blog"))

    assert [(s.name, s.version, s.versions) for s in store.secrets("shop", "production")] == [
        ("db", 1, 1), ("token", 2, 2)]
    assert store.sealed_secret("shop", "production", "token", 1) == SealedSecret(
        "shop", "production", "token", 1, "k1", b"one@1")
    with pytest.raises(NotFound, match=r"no version 3 of secret 'token' in shop \(production\)"):
        store.sealed_secret("shop", "production", "token", 3)
    assert [s.ciphertext for s in store.sealed_secrets("shop")] == [b"one@1", b"two@2", b"staging@1", b"db@1"]
    assert [s.ciphertext for s in store.sealed_secrets()] == [b"one@1", b"two@2", b"staging@1", b"db@1", b"blog@1"]
    assert store.secrets("blog", "staging") == []


def test_a_seal_that_fails_adds_no_version(store: AnyStore) -> None:
    def broken(version: int) -> tuple[str, bytes]:
        raise RuntimeError("no key")

    with pytest.raises(RuntimeError):
        store.add_secret("shop", "production", "token", broken)
    assert store.secrets("shop", "production") == []
    assert store.add_secret("shop", "production", "token", sealer("one")).version == 1


def test_a_removed_secret_set_again_goes_on_from_its_last_version(store: AnyStore) -> None:
    store.add_secret("shop", "production", "token", sealer("one"))
    store.add_secret("shop", "production", "token", sealer("two"))
    store.add_secret("shop", "production", "other", sealer("other"))
    store.remove_secret("shop", "production", "token")
    assert [s.name for s in store.secrets("shop", "production")] == ["other"]
    assert [s.name for s in store.sealed_secrets("shop")] == ["other"]
    with pytest.raises(NotFound, match="no version 2"):
        store.sealed_secret("shop", "production", "token", 2)
    with pytest.raises(NotFound, match=r"no secret named 'token' in shop \(production\)"):
        store.remove_secret("shop", "production", "token")
    with pytest.raises(NotFound):
        store.remove_secret("shop", "staging", "token")
    again = store.add_secret("shop", "production", "token", sealer("three"))
    assert (again.version, again.versions) == (3, 1)
    assert store.add_secret("shop", "production", "token", sealer("four")).version == 4


def test_resealing_is_all_or_nothing(store: AnyStore) -> None:
    store.add_secret("shop", "production", "a", sealer("a"))
    store.add_secret("shop", "production", "a", sealer("a2"))
    store.add_secret("blog", "production", "b", sealer("b"))

    def half(sealed: SealedSecret) -> tuple[str, bytes]:
        if sealed.name == "b":
            raise RuntimeError("cut off")
        return "k2", b"resealed"

    with pytest.raises(RuntimeError):
        store.reseal_secrets(half)
    assert {(s.key_id, s.ciphertext) for s in store.sealed_secrets()} == {
        ("k1", b"a@1"), ("k1", b"a2@2"), ("k1", b"b@1")}
    assert store.reseal_secrets(lambda s: ("k2", s.ciphertext + b"!")) == 3
    assert [(s.version, s.key_id, s.ciphertext) for s in store.sealed_secrets("shop")] == [
        (1, "k2", b"a@1!"), (2, "k2", b"a2@2!")]
    assert store.secrets("shop", "production")[0].key_id == "k2"


def test_a_release_records_its_artifact_apart(store: AnyStore) -> None:
    release = store.create_release("shop", "recette", "c" * 40, None)
    assert store.list_releases("shop")[0].artifact == ()
    web = ServiceSpec(name="web", image="reg/shop/web@sha256:" + "a" * 64, port=8000, hosts=("shop.localhost",))
    store.set_release_artifact(release, (web,))
    store.set_release(release, ReleaseStatus.LIVE, (replace(web, hosts=("recette.shop.localhost",)),))
    [row] = store.list_releases("shop", environment="recette")
    assert [s.hosts for s in row.artifact] == [("shop.localhost",)]
    assert [s.hosts for s in row.services] == [("recette.shop.localhost",)]
    store.set_release_artifact(9999, (web,))  # an unknown release: nothing happens
