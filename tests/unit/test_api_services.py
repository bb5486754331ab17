"""The services the API's routes call, on the in-memory fakes: apps (create, delete, domains, host
access, what a push's hooks know), access (tokens, hook tokens), jobs (reads, a refused push) and
the system's health."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dockyard.domain.access import Principal
from dockyard.domain.errors import Conflict, DockyardError, InvalidName, NotFound, Unauthorized
from dockyard.domain.model import Environment, JobStatus
from dockyard.fakes import FakeRepos, FakeStore
from dockyard.services.access import Access
from dockyard.services.apps import Apps
from dockyard.services.jobs import Jobs
from dockyard.services.push_tokens import PREFIX
from dockyard.services.system import System

BASE = "dockyard.test"


class World:
    def __init__(self) -> None:
        self.store, self.repos = FakeStore(), FakeRepos()
        self.destroyed: list[str] = []
        self.apps = Apps(self.store, self.repos, self.destroyed.append, BASE)
        self.jobs = Jobs(self.store)
        self.access = Access(self.store)


@pytest.fixture
def world() -> World:
    return World()


# -- apps -----------------------------------------------------------------------------------------
def test_creating_an_app_makes_its_repo_and_its_record(world: World) -> None:
    app = world.apps.create("shop", "trunk", ["shop.example", "shop.example"])
    assert (app.name, app.deploy_branch, app.domains) == ("shop", "trunk", ("shop.example",))
    assert world.repos.exists("shop")
    assert [e.name for e in world.store.environments("shop")] == ["production"]
    assert world.apps.get("shop") == app
    assert [a.name for a in world.apps.list_apps()] == ["shop"]


def test_a_name_taken_is_refused_before_anything_is_made(world: World) -> None:
    world.apps.create("shop")
    world.repos.delete("shop")  # what is made twice would show here
    with pytest.raises(Conflict) as caught:
        world.apps.create("shop")
    assert caught.value.message == "app 'shop' already exists"
    assert caught.value.hint == "pick another name, or push to its remote"
    assert not world.repos.exists("shop")


@pytest.mark.parametrize(("name", "branch"), [("Shop", "main"), ("shop", "a..b"), ("-x", "main")])
def test_bad_names_are_refused_before_anything_is_made(world: World, name: str, branch: str) -> None:
    with pytest.raises(InvalidName):
        world.apps.create(name, branch)
    assert world.repos.trees == {}
    assert world.apps.list_apps() == []


def test_a_new_app_takes_no_host_of_another(world: World) -> None:
    world.apps.create("shop", domains=["www.example"])
    with pytest.raises(Conflict, match="already routes to app shop"):
        world.apps.create("blog", domains=["www.example"])
    with pytest.raises(Conflict, match=re.escape("hosts under shop.dockyard.test belong to app shop")):
        world.apps.create("blog", domains=["api.shop.dockyard.test"])
    world.store.set_domains("shop", ("api.blog.dockyard.test",))  # claimed before the rule
    with pytest.raises(Conflict, match=re.escape("app shop answers at api.blog.dockyard.test, a host of the app blog")):
        world.apps.create("blog")
    assert not world.repos.exists("blog")


def test_domains_are_the_app_s_own_or_outside_the_base(world: World) -> None:
    world.apps.create("shop")
    world.apps.create("blog", domains=["blog.example"])
    assert world.apps.set_domains("shop", ["api.shop.dockyard.test", "shop.example"]).domains == (
        "api.shop.dockyard.test", "shop.example")
    with pytest.raises(Conflict, match=re.escape("blog.example already routes to app blog")):
        world.apps.set_domains("shop", ["blog.example"])
    with pytest.raises(DockyardError, match="is the base domain"):
        world.apps.set_domains("shop", [BASE])
    with pytest.raises(NotFound):
        world.apps.set_domains("nope", [])
    assert world.apps.get("shop").domains == ("api.shop.dockyard.test", "shop.example")


def test_host_access_replaces_the_last_list(world: World) -> None:
    world.apps.create("shop")
    assert world.apps.set_host_access("shop", ["privileged", "privileged"]).host_access == ("privileged",)
    assert world.apps.set_host_access("shop", []).host_access == ()
    with pytest.raises(InvalidName, match="unknown host access key 'root'"):
        world.apps.set_host_access("shop", ["root"])
    with pytest.raises(InvalidName):
        world.apps.set_host_access("Shop", [])
    with pytest.raises(NotFound):
        world.apps.set_host_access("nope", [])


def test_an_app_is_not_deleted_while_a_job_of_it_runs(world: World) -> None:
    world.apps.create("shop")
    job = world.store.enqueue("deploy", "shop", {"commit": "c" * 40})
    with pytest.raises(Conflict) as caught:
        world.apps.delete("shop")
    assert caught.value.message == f"shop has a deploy job running (job {job.id})"
    assert caught.value.hint == f"wait for it to end (dockyard jobs show {job.id} -f), then delete the app"
    assert world.destroyed == [] and world.repos.exists("shop")
    world.store.finish_job(job.id, JobStatus.SUCCEEDED)
    world.apps.delete("shop")
    assert world.destroyed == ["shop"]
    assert not world.repos.exists("shop")
    with pytest.raises(NotFound):
        world.apps.get("shop")
    with pytest.raises(NotFound):
        world.apps.delete("shop")


def test_a_push_s_hooks_know_which_environments_each_branch_deploys_to(world: World) -> None:
    app = world.apps.create("shop", "trunk")
    world.store.add_environment(Environment("shop", "recette", branch="develop"))
    world.store.add_environment(Environment("shop", "dev", branch="trunk"))
    world.store.add_environment(Environment("shop", "demo"))  # deployed on demand only
    assert world.apps.branch_targets(app) == {"trunk": ["production", "dev"], "develop": ["recette"]}


# -- access ---------------------------------------------------------------------------------------
def test_the_first_admin_token_is_made_once(world: World) -> None:
    token = world.access.first_admin()
    assert token is not None
    assert world.access.first_admin() is None
    assert world.access.authenticate(token) == Principal("admin", "admin")
    assert [t.name for t in world.access.tokens()] == ["admin"]


def test_tokens_are_created_listed_and_revoked(world: World) -> None:
    token = world.access.create("ci@example")
    assert world.access.verify(token) == Principal("ci@example", "admin")
    listed = world.access.tokens()
    assert [(t.name, t.role) for t in listed] == [("ci@example", "admin")]
    assert token not in repr(listed)
    with pytest.raises(Conflict):
        world.access.create("ci@example")
    with pytest.raises(InvalidName, match="invalid token name"):
        world.access.create("two words")
    world.access.revoke("ci@example")
    assert world.access.verify(token) is None
    with pytest.raises(NotFound, match="no token named 'ci@example'"):
        world.access.revoke("ci@example")


def test_an_unknown_token_is_refused(world: World) -> None:
    with pytest.raises(Unauthorized) as caught:
        world.access.authenticate("dy_nope")
    assert caught.value.message == "invalid token"
    assert caught.value.status == 401


def test_a_hook_token_is_the_push_s_until_revoked_and_no_git_password(world: World) -> None:
    token = world.access.mint_hook_token("shop", "alice")
    assert token.startswith(PREFIX)
    assert world.access.authenticate(token) == Principal("alice", "hook", app="shop")
    assert world.access.verify(token) is None  # git takes API tokens only
    world.access.revoke_hook_token(token)
    world.access.revoke_hook_token("")  # a request that minted none: nothing to do
    with pytest.raises(Unauthorized) as caught:
        world.access.authenticate(token)
    assert caught.value.message == "expired hook token"


# -- jobs -----------------------------------------------------------------------------------------
def test_jobs_are_read_back_newest_first_with_their_logs(world: World) -> None:
    for name in ("shop", "blog"):
        world.apps.create(name)
    first = world.store.enqueue("deploy", "shop", {"commit": "a" * 40})
    second = world.store.enqueue("deploy", "blog", {"commit": "b" * 40})
    for line in ("one", "two", "three"):
        world.store.append_log(first.id, line)
    assert [j.id for j in world.jobs.list_jobs()] == [second.id, first.id]
    assert [j.id for j in world.jobs.list_jobs("")] == [second.id, first.id]  # no app: all of them
    assert [j.id for j in world.jobs.list_jobs("shop")] == [first.id]
    assert [j.id for j in world.jobs.list_jobs(None, limit=1)] == [second.id]
    assert world.jobs.get(first.id).app == "shop"
    lines = world.jobs.logs(first.id)
    assert [line for _, line in lines] == ["one", "two", "three"]
    assert [line for _, line in world.jobs.logs(first.id, after=lines[0][0])] == ["two", "three"]
    with pytest.raises(InvalidName):
        world.jobs.list_jobs("Shop")
    with pytest.raises(NotFound, match="no job 999"):
        world.jobs.get(999)


def test_a_refused_push_is_a_failed_job_that_says_why(world: World) -> None:
    world.apps.create("shop")
    job = world.jobs.record_refused_push("shop", "refs/heads/" + "x" * 300, "no Dockerfile" + "!" * 3000, "alice")
    assert job.kind == "push" and job.status is JobStatus.FAILED
    assert job.payload == {"ref": ("refs/heads/" + "x" * 300)[:200], "actor": "alice"}
    assert job.error == ("no Dockerfile" + "!" * 3000)[:2000]
    [(_, line)] = world.jobs.logs(job.id)
    assert line == f" !     push to {job.payload['ref']} rejected: {job.error}"
    with pytest.raises(NotFound):
        world.jobs.record_refused_push("nope", "refs/heads/main", "why", "alice")


# -- the system -----------------------------------------------------------------------------------
class Part:
    def __init__(self, running: bool, address: str = "") -> None:
        self.running, self.address = running, address


class Plane:
    def container_name(self, role: str) -> str:
        return f"dy-abc-{role}"

    def find(self, role: str) -> dict[str, Any] | None:
        if role == "registry":
            return None
        return {"State": {"Running": True, "StartedAt": "then"}, "Config": {"Image": "caddy:2"}, "RestartCount": 1}


class Pool:
    network, prefix = "10.213.0.0/16", 26


class Engine:
    installation, pool = "abc", Pool()

    def pool_usage(self) -> tuple[int, int]:
        return 3, 1024

    def live_restore(self) -> bool:
        return False


def test_health_and_status_of_the_server_s_parts() -> None:
    system = System(Plane(), Engine(), Part(True, "127.0.0.1:5100"), Part(False), 8080)
    health = system.health()
    assert health["installation"] == "abc" and health["version"]
    assert health["registry"] == {"address": "127.0.0.1:5100", "running": True}
    assert health["proxy"] == {"port": 8080, "running": False}
    assert system.registry_address == "127.0.0.1:5100"
    assert system.live_restore() is False
    status = system.status()
    assert status["data_plane"]["proxy"] == {"container": "dy-abc-proxy", "listens": ":8080", "running": True,
                                             "image": "caddy:2", "started_at": "then", "restarts": 1}
    assert status["data_plane"]["registry"]["running"] is False
    assert status["network_pool"] == {"pool": "10.213.0.0/16", "prefix": 26, "used": 3, "capacity": 1024}
    assert status["engine"] == {"live_restore": False}
