"""Environments on the in-memory fakes and a real SQLite store: each has its own hosts, network,
routes, releases and lock; a push's branch picks where it deploys; removing one leaves the others."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from dockyard.adapters.secret_box import KeyFile
from dockyard.adapters.sql_store import SqlStore
from dockyard.domain import hosts
from dockyard.domain.errors import Conflict, DockyardError, InvalidName, InvalidSource, NotFound
from dockyard.domain.model import App, Job, JobStatus
from dockyard.fakes import FakeBuilder, FakeOrchestrator, FakeProxy, FakeRegistry, FakeRepos, FakeSecretFiles
from dockyard.services.configuration import Configuration
from dockyard.services.deploy import Deployer
from dockyard.services.environments import Environments
from dockyard.services.inspect import parse_source
from dockyard.services.plan import Planner
from tests.support import static_site

APP = "shop"
BASE = "dockyard.test"


# -- hosts: pure ------------------------------------------------------------------------------------
def test_production_answers_at_the_app_and_another_environment_under_it() -> None:
    assert hosts.environment_site("shop", "production", BASE) == "shop.dockyard.test"
    assert hosts.environment_site("shop", "recette", BASE + ".") == "recette.shop.dockyard.test"
    # an environment's hosts are the app's: nobody else may claim them
    assert hosts.reserved_for("recette.shop.dockyard.test", BASE) == "shop"
    assert hosts.reserved_for("api.recette.shop.dockyard.test", BASE) == "shop"


def test_hosts_move_under_the_environment_and_custom_domains_stay_with_production() -> None:
    given = ("shop.dockyard.test", "shop.example", "api.shop.dockyard.test", "www.other.example")
    assert hosts.for_environment(given, "shop", "production", BASE) == given
    assert hosts.for_environment(given, "shop", "recette", BASE) == (
        "recette.shop.dockyard.test", "api.recette.shop.dockyard.test")
    assert hosts.for_environment((), "shop", "recette", BASE) == ()


def test_a_host_another_environment_routes_is_a_clash() -> None:
    others = {"recette": ["recette.shop.dockyard.test"], "dev": []}
    assert hosts.clashes(["recette.shop.dockyard.test", "shop.dockyard.test"], others) == [
        ("recette.shop.dockyard.test", "recette")]
    assert hosts.clashes(["shop.dockyard.test"], others) == []


# -- the services, on fakes ---------------------------------------------------------------------------
class World:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
        self.store.migrate()
        self.events: list[str] = []
        self.repos, self.registry = FakeRepos(), FakeRegistry()
        self.builder = FakeBuilder(self.registry)
        self.orchestrator, self.proxy = FakeOrchestrator(self.events), FakeProxy(self.events)
        self.configuration = Configuration(self.store, KeyFile(tmp_path / "secrets.key"), FakeSecretFiles())
        self.deployer = Deployer(
            store=self.store, repos=self.repos, builder=self.builder, registry=self.registry,
            orchestrator=self.orchestrator, proxy=self.proxy, base_domain=BASE, proxy_port=8080,
            route_prefix="dy-unit", ready_timeout=5, inspector=parse_source, configuration=self.configuration,
        )
        self.queued: list[Job] = []
        self.envs = Environments(self.store, self.repos, self.orchestrator, self.deployer, self.submit, BASE, 8080,
                                 "http://dockyard.test:7700", "registry.test:5000")
        self.store.create_app(App(APP, domains=("shop.example",)))
        self.repos.create(APP)
        self.said: list[str] = []

    def submit(self, kind: str, app: str, payload: dict[str, str], environment: str) -> Job:
        job = self.store.enqueue(kind, app, payload, environment)
        self.queued.append(job)
        return job

    def deploy(self, env: str, files: dict[str, str], branch: str = "main") -> int:
        self.repos.commit(APP, files, branch=branch)
        job = self.envs.queue_deploy(APP, env, "tester", branch=branch)
        self.deployer.deploy_job(job, self.said.append)  # as the job runner would, then marks it done:
        self.store.finish_job(job.id, JobStatus.SUCCEEDED)
        live = self.store.live_release(APP, env)
        assert live is not None
        return live.id

    def routes(self) -> dict[str, tuple[str, ...]]:
        return {r.id: r.hosts for r in self.proxy.routes()}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_two_environments_run_side_by_side_with_their_own_hosts_networks_and_releases(world: World) -> None:
    world.envs.create(APP, "recette", branch="develop")
    prod = world.deploy("production", static_site("prod"))
    recette = world.deploy("recette", static_site("recette", version="2.0"), branch="develop")
    assert world.routes() == {
        "dy-unit-shop.web": ("shop.dockyard.test", "shop.example"),
        "dy-unit-shop--recette.web": ("recette.shop.dockyard.test",),
    }
    assert world.orchestrator.networks == {(APP, "production"), (APP, "recette")}
    assert {(c.environment, c.release) for c in world.orchestrator.observe(APP)} == {
        ("production", prod), ("recette", recette)}
    assert [r["id"] for r in world.envs.releases(APP, "recette")] == [recette]
    assert [r["id"] for r in world.envs.releases(APP, None)] == [recette, prod]
    status = world.envs.status(APP, "recette")
    assert (status["environment"], status["branch"], status["site"]) == ("recette", "develop",
                                                                         "recette.shop.dockyard.test")
    assert status["urls"] == ["http://recette.shop.dockyard.test:8080/"]
    assert [c["release"] for c in status["containers"]] == [recette]
    # a new production release leaves recette alone
    world.deploy("production", static_site("prod 2", version="1.1"))
    assert [c.release for c in world.orchestrator.observe(APP) if c.environment == "recette"] == [recette]
    assert "dy-unit-shop--recette.web" in world.routes()


def test_images_say_which_environments_run_them(world: World) -> None:
    world.envs.create(APP, "recette")
    world.deploy("production", static_site("one"))
    world.deploy("recette", static_site("two", version="2.0"))
    by_version = {i["version"]: i["environments"] for i in world.envs.images(APP)}
    assert by_version == {"1.0": ["production"], "2.0": ["recette"]}
    assert [i["version"] for i in world.envs.images(APP, "recette")] == ["2.0"]
    assert world.envs.images(APP, "recette")[0]["reference"].startswith("registry.test:5000/shop/")


def test_a_push_deploys_to_every_environment_of_its_branch(world: World) -> None:
    app = world.store.get_app(APP)
    world.envs.create(APP, "recette", branch="develop")
    world.envs.create(APP, "qa", branch="develop")
    world.envs.create(APP, "dev")
    assert world.envs.deployed_from(app, "main") == ["production"]
    assert world.envs.deployed_from(app, "develop") == ["qa", "recette"]
    assert world.envs.deployed_from(app, "feature") == []
    with pytest.raises(DockyardError, match="deploys from no branch"):
        world.envs.queue_deploy(APP, "dev", "tester")
    world.envs.set_branch(APP, "dev", "feature")
    assert world.envs.deployed_from(app, "feature") == ["dev"]
    with pytest.raises(DockyardError, match="production deploys from the app's deploy branch"):
        world.envs.set_branch(APP, "production", "develop")


def test_queueing_one_commit_twice_for_an_environment_gives_one_job(world: World) -> None:
    world.envs.create(APP, "recette", branch="main")
    commit = world.repos.commit(APP, static_site("x"))
    first = world.envs.queue_deploy(APP, "recette", "hook", commit=commit)
    again = world.envs.queue_deploy(APP, "recette", "hook", commit=commit)
    prod = world.envs.queue_deploy(APP, "production", "hook", commit=commit)
    assert first.id == again.id != prod.id
    assert (first.environment, prod.environment) == ("recette", "production")


def test_bad_names_and_targets_are_refused_with_a_hint(world: World) -> None:
    for bad in ("Recette", "re--cette", "-x", "a" * 41, "../x"):
        with pytest.raises(InvalidName):
            world.envs.create(APP, bad)
    with pytest.raises(InvalidName, match="unknown target 'swarm-eu'") as info:
        world.envs.create(APP, "recette", target="swarm-eu")
    assert "local" in info.value.hint
    with pytest.raises(InvalidName):
        world.envs.create(APP, "recette", branch="a..b")
    with pytest.raises(Conflict):
        world.envs.create(APP, "production")
    with pytest.raises(NotFound):
        world.envs.create("nobody", "recette")
    with pytest.raises(NotFound, match="no environment 'qa'"):
        world.envs.queue_deploy(APP, "qa", "tester")
    assert [e.name for e in world.envs.of(APP)] == ["production"]


def test_removing_an_environment_takes_it_off_and_leaves_production_serving(world: World) -> None:
    world.envs.create(APP, "recette")
    prod = world.deploy("production", static_site("prod"))
    world.deploy("recette", static_site("recette", version="2.0"))
    with pytest.raises(DockyardError, match="production cannot be removed"):
        world.envs.remove(APP, "production")
    world.envs.remove(APP, "recette")
    assert [(c.environment, c.release) for c in world.orchestrator.observe(APP)] == [("production", prod)]
    assert list(world.routes()) == ["dy-unit-shop.web"]
    assert world.orchestrator.networks == {(APP, "production")}
    assert [e.name for e in world.envs.of(APP)] == ["production"]
    assert world.envs.releases(APP, None)[0]["environment"] == "production"


def test_an_environment_with_a_job_running_is_not_removed(world: World) -> None:
    world.envs.create(APP, "recette", branch="main")
    world.repos.commit(APP, static_site("x"))
    job = world.envs.queue_deploy(APP, "recette", "tester")
    assert world.store.claim_next() == world.store.get_job(job.id)
    with pytest.raises(Conflict, match=f"job {job.id}"):
        world.envs.remove(APP, "recette")


def test_a_service_named_like_an_environment_cannot_take_its_host(world: World) -> None:
    world.envs.create(APP, "api")
    world.deploy("api", static_site("the api environment"))
    compose = {
        "docker-compose.yml": "services:\n  web:\n    build: .\n    ports: ['8000']\n"
                              "  api:\n    build: .\n    ports: ['8000']\n",
        **static_site("prod"),
    }
    with pytest.raises(Conflict, match=r"api\.shop\.dockyard\.test answers for shop's environment api"):
        world.deploy("production", compose)
    assert world.store.live_release(APP, "production") is None  # nothing released
    assert "dy-unit-shop--api.web" in world.routes()


def test_releases_of_two_environments_do_not_wait_for_each_other(world: World) -> None:
    """Each environment has its own lock: recette releases while production's is held."""
    world.envs.create(APP, "recette")
    done = threading.Event()
    with world.deployer.lock(APP, "production"):
        worker = threading.Thread(target=lambda: (world.deploy("recette", static_site("r")), done.set()))
        worker.start()
        assert done.wait(20), "recette's release waited for production's lock"
    worker.join()


# -- dockyard plan -----------------------------------------------------------------------------------
def planner(world: World) -> Planner:
    return Planner(world.store, world.repos, world.deployer, "registry.test:5000", "http://dockyard.test:7700")


def test_plan_says_what_a_deploy_would_change_and_changes_nothing(world: World) -> None:
    world.deploy("production", static_site("v1"))
    events, routes = list(world.events), world.routes()
    unchanged = planner(world).plan(APP, "production")
    assert [(c["service"], c["action"]) for c in unchanged["changes"]] == [("web", "keep")]
    world.store.set_variables(APP, "production", {"MODE": "fast"})
    world.repos.commit(APP, static_site("v2", version="1.1"))
    planned = planner(world).plan(APP, "production")
    [web] = planned["changes"]
    assert web["action"] == "replace"
    assert web["reasons"][0].startswith("image ") and "built from Dockerfile at" in web["reasons"][0]
    assert "variable MODE added" in web["reasons"]
    assert planned["config"] == {"variables": ["MODE"], "secrets": {}}
    assert (world.events, world.routes()) == (events, routes)  # nothing started, stopped or routed
    assert len(world.envs.releases(APP, None)) == 1  # nothing recorded


def test_plan_warns_of_a_single_web_container_without_a_health_check(world: World) -> None:
    world.deploy("production", static_site("v1"))
    [warning] = planner(world).plan(APP, "production")["warnings"]
    assert warning.startswith("web: one container and no health check: a release of it goes live once it answers "
                              "HTTP, even with a 500"), warning
    assert "environments/production/services/web/health" in warning
    for guarded in ("environments:\n  production:\n    services:\n      web: {health: {path: /up}}\n",
                    "environments:\n  production:\n    services:\n      web: {replicas: 2}\n"):
        world.repos.commit(APP, {**static_site("v1"), "dockyard.yml": guarded})
        assert planner(world).plan(APP, "production")["warnings"] == []


def test_plan_refuses_what_a_deploy_would_refuse(world: World) -> None:
    world.deploy("production", static_site("v1"))
    world.repos.commit(APP, {**static_site("v2"), "docker-compose.yml": "services:\n  web:\n    build: .\n"
                                                                        "    depends_on: [nope]\n"})
    with pytest.raises(InvalidSource, match="unknown service 'nope'"):
        planner(world).plan(APP, "production")
    world.repos.commit(APP, {**static_site("v3"), "dockyard.yml": "environments:\n  production:\n"
                                                                  "    secrets: [API_KEY]\n"})
    with pytest.raises(InvalidSource, match="needs the secret"):
        planner(world).plan(APP, "production")


def test_dockyard_yml_variables_conflicting_with_the_cli_are_refused(world: World) -> None:
    files = {**static_site("v1"), "dockyard.yml": "environments:\n  production:\n    variables: {MODE: file}\n"}
    world.repos.commit(APP, files)
    assert "MODE" in planner(world).plan(APP, "production")["config"]["variables"]
    world.store.set_variables(APP, "production", {"MODE": "cli"})
    with pytest.raises(InvalidSource, match="MODE") as info:
        planner(world).plan(APP, "production")
    assert "one place" in info.value.hint
    world.store.set_variables(APP, "production", {"MODE": "file"})  # the same value: no conflict
    world.deploy("production", files)


def test_dockyard_yml_routes_become_hosts_of_their_service(world: World) -> None:
    files = {**static_site("v1"), "dockyard.yml": "environments:\n  production:\n    routes:\n"
                                                  "      www.shop.dockyard.test: web:8000\n"}
    world.deploy("production", files)
    assert world.routes()["dy-unit-shop.web"] == ("shop.dockyard.test", "shop.example", "www.shop.dockyard.test")
    taken = {**files, "dockyard.yml": "environments:\n  production:\n    routes:\n      blog.dockyard.test: web:8000\n"}
    world.repos.commit(APP, taken)
    with pytest.raises(Conflict, match="reserved for app blog"):
        planner(world).plan(APP, "production")


def test_a_release_keeps_its_artifact_apart_from_the_environments_configuration(world: World) -> None:
    """The artifact (the commit's services pinned by digest) is the same in every environment;
    hosts, variables and secrets are each environment's: promotion re-applies one artifact."""
    world.envs.create(APP, "recette")
    world.store.set_variables(APP, "recette", {"MODE": "recette"})
    world.configuration.set_secret(APP, "recette", "token", "s3cret")
    prod = world.deploy("production", static_site("one"))
    recette = world.deploy("recette", static_site("one"))
    releases = {r["id"]: r for r in world.envs.releases(APP, None)}
    assert releases[prod]["artifact"] == releases[recette]["artifact"]
    [artifact] = releases[recette]["artifact"]
    assert artifact["image"].startswith("registry.test") or "@sha256:" in artifact["image"]
    assert "@sha256:" in artifact["image"] and artifact["environment"] == []
    assert artifact["hosts"] == ("shop.dockyard.test", "shop.example")  # as the commit gives them
    [configured] = releases[recette]["services"]
    assert configured["image"] == artifact["image"]
    assert configured["hosts"] == ("recette.shop.dockyard.test",)
    assert [k for k, _ in configured["environment"]] == ["MODE", "token"]
    assert releases[recette]["config"] == {"variables": ["MODE"], "secrets": {"token": 1}}


def test_dockyard_yml_remaps_an_environments_published_ports(world: World) -> None:
    """One stack in two environments on one host: recette publishes 51011 where the compose
    file (and production) publishes 50011; without the remap recette is refused."""
    compose = "services:\n  web:\n    build: .\n    ports: ['50011:8000']\n"
    declared = "environments:\n  recette:\n    services:\n      web:\n        ports: {50011: 51011}\n"
    world.envs.create(APP, "recette")
    world.deploy("production", {**static_site("one"), "docker-compose.yml": compose})
    with pytest.raises(DockyardError, match="50011"):
        world.deploy("recette", {**static_site("one"), "docker-compose.yml": compose})
    world.deploy("recette", {**static_site("one"), "docker-compose.yml": compose, "dockyard.yml": declared})
    published = {r.environment: [p[0] for s in r.services for p in s.published]
                 for r in world.store.list_releases(APP) if r.status == "live"}
    assert published == {"production": [50011], "recette": [51011]}
    bad = declared.replace("50011: 51011", "50012: 51012")
    with pytest.raises(InvalidSource, match=r"environments/recette/services/web/ports: .*50012 is published by no"):
        planner(world).plan(APP, "recette", commit=world.repos.commit(
            APP, {**static_site("one"), "docker-compose.yml": compose, "dockyard.yml": bad}, branch="other"))


def test_a_pushs_hand_over_left_behind_goes_after_an_hour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pre-receive hands post-receive the deploys it queued in a file of the repository; one
    whose post-receive never ran (git refused the update) is removed by a later push."""
    import os

    from dockyard.entrypoints import hooks

    monkeypatch.chdir(tmp_path)
    old, new, other = (tmp_path / "dockyard-deploys-1.json", tmp_path / "dockyard-deploys-2.json",
                       tmp_path / "HEAD")
    for path in (old, new, other):
        path.write_text("[]")
    os.utime(old, (0, 0))
    os.utime(other, (0, 0))
    hooks._forget_old_handovers()
    assert (old.exists(), new.exists(), other.exists()) == (False, True, True)
