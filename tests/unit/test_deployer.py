"""The deploy pipeline (services.deploy.Deployer) on the in-memory fakes and a real SQLite store:
what it starts, routes and stops, in which order, and what it keeps when a release fails."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain.errors import DeployFailed, InvalidSource
from dockyard.domain.model import App, ReleaseStatus, Route, RunningService, ServiceSpec
from dockyard.fakes import FakeBuilder, FakeOrchestrator, FakeProxy, FakeRegistry, FakeRepos
from dockyard.services.deploy import Deployer
from dockyard.services.inspect import parse_source
from tests.support import static_site

APP = "shop"
BASE_DOMAIN = "dockyard.test"
ROUTE_ID = f"dy-unit-{APP}.web"
HOSTS = (f"{APP}.{BASE_DOMAIN}", "shop.example")


@dataclass
class World:
    store: SqlStore
    repos: FakeRepos
    registry: FakeRegistry
    builder: FakeBuilder
    orchestrator: FakeOrchestrator
    proxy: FakeProxy
    deployer: Deployer
    events: list[str]
    said: list[str] = field(default_factory=list)

    def push(self, files: dict[str, str], app: str = APP) -> str:
        return self.repos.commit(app, files)

    def deploy(self, commit: str, app: str = APP) -> int:
        job = self.store.enqueue("deploy", app, {"commit": commit, "branch": "main"})
        self.deployer.deploy_job(job, self.said.append)
        live = self.store.live_release(app, "production")
        assert live is not None
        return live.id

    def running(self, app: str = APP) -> list[RunningService]:
        return self.orchestrator.observe(app)

    def only_container(self) -> RunningService:
        containers = self.running()
        assert len(containers) == 1, containers
        return containers[0]

    def releases(self) -> dict[int, dict[str, object]]:
        return {r.id: r for r in self.store.list_releases(APP)}


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
    store.migrate()
    events: list[str] = []
    repos, registry = FakeRepos(), FakeRegistry()
    builder, orchestrator, proxy = FakeBuilder(registry), FakeOrchestrator(events), FakeProxy(events)
    deployer = Deployer(
        store=store, repos=repos, builder=builder, registry=registry, orchestrator=orchestrator, proxy=proxy,
        base_domain=BASE_DOMAIN, proxy_port=8080, route_prefix="dy-unit", ready_timeout=5,
        inspector=parse_source,  # in this process: the bounded child is tested in tests/integration
    )
    store.create_app(App(APP, domains=("shop.example",)))
    repos.create(APP)
    return World(store, repos, registry, builder, orchestrator, proxy, deployer, events)


def short(container: RunningService) -> str:
    return f"web r{container.release} {container.id[:12]}"


# -- releases -------------------------------------------------------------------------------------
def test_first_release_starts_the_web_service_and_routes_its_hosts(world: World) -> None:
    commit = world.push(static_site("v1"))
    release = world.deploy(commit)

    web = world.only_container()
    image = world.store.list_images(APP)[0]
    assert (image.repository, image.version, image.tag, image.commit) == ("shop/site", "1.0", "1.0", commit)
    assert web.image == image.image_id  # on one host the built image runs by its content id
    assert (web.service, web.release, web.state) == ("web", release, "running")
    assert (APP, "production") in world.orchestrator.networks
    assert world.proxy.routes() == [Route(ROUTE_ID, HOSTS, (str(web.upstream),))]
    assert world.events == [f"start {short(web)}", f"ready {short(web)}", f"route {ROUTE_ID} -> {web.upstream}",
                            f"monitor {short(web)}"]

    live = world.store.live_release(APP, "production")
    assert live is not None and live.commit == commit and live.status == ReleaseStatus.LIVE
    assert [(s.name, s.port, s.hosts) for s in live.services] == [("web", 8000, HOSTS)]
    assert live.services[0].image == f"{world.registry.address}/shop/site@{image.digest}"  # pinned
    assert f"-----> Release {release} is live" in world.said
    assert f"       http://{APP}.{BASE_DOMAIN}:8080/" in world.said


def test_changed_image_starts_new_container_routes_to_it_then_stops_the_old(world: World) -> None:
    first = world.deploy(world.push(static_site("v1")))
    old = world.only_container()
    world.events.clear()

    second = world.deploy(world.push(static_site("v2", version="1.1")))
    new = world.only_container()
    assert new.id != old.id and new.image != old.image and new.release == second
    assert world.events == [
        f"start {short(new)}",
        f"ready {short(new)}",
        f"route {ROUTE_ID} -> {new.upstream}",
        f"monitor {short(new)}",
        f"drain {short(old)}",
        f"stop {short(old)}",
    ]
    assert world.proxy.routes() == [Route(ROUTE_ID, HOSTS, (str(new.upstream),))]
    releases = world.releases()
    assert releases[first].status == ReleaseStatus.SUPERSEDED
    assert releases[second].status == ReleaseStatus.LIVE


def test_release_whose_new_service_fails_keeps_the_old_one_serving(world: World) -> None:
    first = world.deploy(world.push(static_site("v1")))
    old = world.only_container()
    world.events.clear()
    world.orchestrator.fail_ready.add("web")  # the new container exits before it answers

    with pytest.raises(DeployFailed, match="exited"):
        world.deploy(world.push(static_site("v2 crashes", version="2.0")))

    assert world.running() == [old]  # untouched, still running
    assert world.proxy.routes() == [Route(ROUTE_ID, HOSTS, (str(old.upstream),))]
    started = [e for e in world.events if e.startswith("start ")]
    assert len(started) == 1
    new_id = started[0].rsplit(" ", 1)[1]
    assert world.events == [started[0], f"stop web r{first + 1} {new_id}"]  # stopped what it started, only
    releases = world.releases()
    assert releases[first + 1].status == ReleaseStatus.FAILED
    assert "exited" in str(releases[first + 1].error)
    assert releases[first].status == ReleaseStatus.LIVE
    live = world.store.live_release(APP, "production")
    assert live is not None and live.id == first
    assert " !     Release failed; the previous release keeps serving." in world.said


def test_failed_release_of_one_service_leaves_the_kept_and_old_ones(world: World) -> None:
    image1 = f"{world.registry.address}/shop/site@sha256:{'1' * 64}"
    image2 = f"{world.registry.address}/shop/site@sha256:{'2' * 64}"
    web = ServiceSpec(name="web", image=image1, port=8000, hosts=HOSTS)
    worker = ServiceSpec(name="worker", image=image1, command=("work",))
    app = world.store.get_app(APP)
    first = world.deployer.release(app, "a" * 40, (web, worker), None, world.said.append)
    before = world.running()
    assert [(c.service, c.release) for c in before] == [("web", first), ("worker", first)]
    world.events.clear()

    world.orchestrator.fail_ready.add("worker")
    with pytest.raises(DeployFailed):
        world.deployer.release(app, "b" * 40, (web, ServiceSpec("worker", image2, command=("work",))), None,
                               world.said.append)
    assert world.running() == before  # the kept web and the old worker both still run
    assert [e.split(" ")[0:3] for e in world.events] == [["start", "worker", f"r{first + 1}"],
                                                          ["stop", "worker", f"r{first + 1}"]]
    assert world.proxy.routes() == [Route(ROUTE_ID, HOSTS, (str(before[0].upstream),))]
    assert "-----> web: unchanged, keeping " + before[0].id[:12] in world.said


def test_unchanged_release_keeps_the_container(world: World) -> None:
    first = world.deploy(world.push(static_site("v1")))
    web = world.only_container()
    world.events.clear()

    # a new commit with the same tree builds the same image, so the service spec is unchanged
    second = world.deploy(world.push({**static_site("v1")}))
    assert second != first
    assert world.running() == [web]  # same container, still labelled with the release that started it
    assert world.events == [f"route {ROUTE_ID} -> {web.upstream}"]  # route refreshed, nothing started or stopped
    assert f"-----> web: unchanged, keeping {web.id[:12]}" in world.said
    releases = world.releases()
    assert (releases[first].status, releases[second].status) == (ReleaseStatus.SUPERSEDED, ReleaseStatus.LIVE)


# -- build ----------------------------------------------------------------------------------------
def test_services_for_picks_the_root_dockerfile_among_several(world: World) -> None:
    files = {
        **static_site("site"),
        "worker/Dockerfile": "FROM dockyard/busybox:local\nCMD [\"sleep\", \"3600\"]\n",
        "Dockerfile-tools": "FROM dockyard/busybox:local\nEXPOSE 9000\n",
    }
    commit = world.push(files)
    app = world.store.get_app(APP)
    _, pinned = world.deployer.build_images(app, commit, world.said.append)
    assert set(pinned) == {"Dockerfile", "Dockerfile-tools", "worker/Dockerfile"}
    assert len(set(pinned.values())) == 3  # three distinct images, each pinned by digest
    assert world.registry.config_digest("shop/site", "1.0") is not None
    assert world.registry.config_digest("shop/shop-tools", f"g{commit[:8]}") is not None
    assert world.registry.config_digest("shop/worker", f"g{commit[:8]}") is not None

    services = world.deployer.services_for(app, commit, pinned)
    assert services == (ServiceSpec(name="web", image=pinned["Dockerfile"], port=8000, hosts=HOSTS),)


def test_services_for_refuses_several_dockerfiles_without_a_root_one(world: World) -> None:
    files = {
        "api/Dockerfile": "FROM dockyard/busybox:local\nEXPOSE 8000\n",
        "worker/Dockerfile": "FROM dockyard/busybox:local\n",
    }
    commit = world.push(files)
    app = world.store.get_app(APP)
    with pytest.raises(InvalidSource, match="several Dockerfiles"):  # found before anything is built
        world.deployer.build_images(app, commit, world.said.append)
    assert world.builder.sizes == {}


def test_build_images_gives_a_distinct_version_when_the_tag_is_taken(world: World) -> None:
    app = world.store.get_app(APP)
    c1 = world.push(static_site("v1", version="1.0"))
    _, pinned1 = world.deployer.build_images(app, c1, world.said.append)
    first = world.store.list_images(APP)[0]
    assert (first.version, first.tag) == ("1.0", "1.0")
    assert not [line for line in world.said if "WARNING" in line]

    # changed source, same VERSION: the tag 1.0 is bound to another image id
    c2 = world.push(static_site("v2", version="1.0"))
    world.said.clear()
    _, pinned2 = world.deployer.build_images(app, c2, world.said.append)
    second = world.store.list_images(APP)[0]
    assert (second.version, second.tag) == (f"1.0+g{c2[:8]}", f"1.0_g{c2[:8]}")
    assert second.image_id != first.image_id and pinned2 != pinned1
    assert (
        f" !     WARNING: shop/site:1.0 is already bound to another build; this build is "
        f"shop/site:1.0_g{c2[:8]}. Raise VERSION in Dockerfile to release a new version."
    ) in world.said
    assert world.registry.config_digest("shop/site", "1.0") == first.image_id  # 1.0 stays bound
    assert world.registry.config_digest("shop/site", second.tag) == second.image_id
    assert f"-----> Pushing {world.registry.address}/shop/site:{second.tag}" in world.said

    # the first source again: same image id, so the tag 1.0 is reused as it is
    c3 = world.push(static_site("v1", version="1.0"))
    world.said.clear()
    _, pinned3 = world.deployer.build_images(app, c3, world.said.append)
    third = world.store.list_images(APP)[0]
    assert (third.version, third.tag, third.image_id, third.commit) == ("1.0", "1.0", first.image_id, c3)
    assert pinned3 == pinned1
    assert not [line for line in world.said if "WARNING" in line]


def test_build_images_counts_on_when_the_distinct_tag_is_taken_too(world: World) -> None:
    app = world.store.get_app(APP)
    world.deployer.build_images(app, world.push(static_site("v1", version="1.0")), world.said.append)
    c2 = world.push(static_site("v2", version="1.0"))
    world.registry.bind("shop/site", f"1.0_g{c2[:8]}", "sha256:" + "9" * 64)  # taken by some other build
    world.deployer.build_images(app, c2, world.said.append)
    latest = world.store.list_images(APP)[0]
    assert (latest.version, latest.tag) == (f"1.0+g{c2[:8]}.2", f"1.0_g{c2[:8]}.2")
    assert world.registry.config_digest("shop/site", latest.tag) == latest.image_id


# -- upkeep ---------------------------------------------------------------------------------------
def test_restore_routes_recreates_the_routes_of_the_live_release(world: World) -> None:
    world.deploy(world.push(static_site("v1")))
    world.deploy(world.push(static_site("v2", version="1.1")))
    web = world.only_container()
    expected = [Route(ROUTE_ID, HOSTS, (str(web.upstream),))]
    assert world.proxy.routes() == expected
    world.store.create_app(App("blog"))  # no release yet: no route

    world.proxy = fresh = FakeProxy()  # the proxy restarted and lost its configuration
    world.deployer.releaser.proxy = fresh
    assert fresh.routes() == []
    world.deployer.restore_routes()
    assert fresh.routes() == expected


def test_restore_routes_skips_containers_that_do_not_run(world: World) -> None:
    world.deploy(world.push(static_site("v1")))
    web = world.only_container()
    world.orchestrator.containers[web.id] = replace(web, state="exited")
    world.deployer.releaser.proxy = fresh = FakeProxy()
    world.deployer.restore_routes()
    assert fresh.routes() == []


def test_restore_routes_routes_a_service_kept_from_an_earlier_release(world: World) -> None:
    commit = world.push(static_site("v1"))
    world.deploy(commit)
    second = world.deploy(commit)  # nothing changed: the container of release 1 serves release 2
    web = world.only_container()
    assert web.release != second
    world.deployer.releaser.proxy = fresh = FakeProxy()
    world.deployer.restore_routes()
    assert fresh.routes() == [Route(ROUTE_ID, HOSTS, (str(web.upstream),))]


class BrokenProxy(FakeProxy):
    """Accepts the first route change, then fails, as a proxy that dies midway would."""

    def __init__(self, routes: list[Route], events: list[str]) -> None:
        super().__init__(events)
        self.changes = 0
        for route in routes:
            super().set_route(route)

    def set_route(self, route: Route) -> None:
        self.changes += 1
        if self.changes == 2:
            raise DeployFailed("the proxy went away")
        super().set_route(route)


def test_routes_switched_before_a_failure_go_back_to_the_old_containers(world: World) -> None:
    compose = (
        "services:\n  web:\n    build: .\n    ports: ['8000']\n"
        "  admin:\n    build: .\n    ports: ['8000']\n"
    )
    world.deploy(world.push({**static_site("v1"), "docker-compose.yml": compose}))
    old = {c.service: c for c in world.running()}
    before = sorted(world.proxy.routes(), key=lambda r: r.id)
    broken = BrokenProxy(before, world.events)
    world.deployer.releaser.proxy = broken
    with pytest.raises(DeployFailed, match="the proxy went away"):
        world.deploy(world.push({**static_site("v2", version="1.1"), "docker-compose.yml": compose}))
    assert sorted(broken.routes(), key=lambda r: r.id) == before  # the switched route points at the old container again
    assert {c.service: c.id for c in world.running()} == {s: c.id for s, c in old.items()}
    assert [r.status for r in world.store.list_releases(APP)] == ["failed", "live"]


def test_a_failed_registry_push_moves_no_traffic(world: World) -> None:
    world.deploy(world.push(static_site("v1")))
    old = world.only_container()
    routes = world.proxy.routes()

    def refuse(reference: str, progress: object) -> str:
        raise DeployFailed(f"push of {reference} failed: the registry is full")

    world.builder.push = refuse  # type: ignore[method-assign]
    with pytest.raises(DeployFailed, match="registry is full"):
        world.deploy(world.push(static_site("v2", version="1.1")))
    assert world.only_container().id == old.id  # the container started meanwhile is gone
    assert world.proxy.routes() == routes
    assert [r.status for r in world.store.list_releases(APP)] == ["failed", "live"]


def test_route_ids_of_different_apps_never_collide(world: World) -> None:
    assert world.deployer.route_id("shop", "admin-web") != world.deployer.route_id("shop-admin", "web")


def test_a_base_built_in_the_same_push_is_pinned_by_id_and_never_tagged(world: World) -> None:
    """The header name of a base image is never lent as a tag in the shared engine: the image
    that builds FROM it is built with that FROM pointing at the base's image id."""
    base = "# reg.example.com/acme/base\n# VERSION 1\nFROM scratch\n"
    web = static_site("on base")
    web["Dockerfile"] = web["Dockerfile"].replace("FROM dockyard/busybox:local", "FROM reg.example.com/acme/base:1")
    world.deploy(world.push({**web, "Dockerfile-base": base}))
    assert world.builder.image_id("reg.example.com/acme/base:1") is None
    assert not [r for r in world.builder.references if r.startswith("reg.example.com/")]
    base_id = next(i.image_id for i in world.store.list_images(APP) if i.dockerfile == "Dockerfile-base")
    web_id = next(i.image_id for i in world.store.list_images(APP) if i.dockerfile == "Dockerfile")
    text = world.builder.dockerfiles[web_id]
    assert text is not None and f"FROM {base_id}\n" in text and "reg.example.com/acme/base" not in text
    assert world.builder.dockerfiles[base_id] is None  # a base of no one's is built as pushed
    assert any(f"FROM reg.example.com/acme/base:1: the image built above ({base_id[7:19]})" in line
               for line in world.said)


def test_a_route_check_during_a_release_does_not_wait_for_it_and_runs_as_it_ends(world: World) -> None:
    """The engine's events ask for route checks from one thread: an app in the middle of a
    release must not hold the other apps' checks up."""
    world.deploy(world.push(static_site("v1")))
    with world.deployer.lock(APP):  # as a release does
        world.deployer.restore_app_routes(APP, wait=False)  # returns at once: the lock is taken
    assert (APP, "production") in world.deployer.releaser._stale
    world.proxy.remove_route(ROUTE_ID)  # the routes went wrong meanwhile
    world.deploy(world.push(static_site("v2", version="1.1")))
    assert world.deployer.releaser._stale == set()
    assert [r.id for r in world.proxy.routes()] == [ROUTE_ID]


def test_add_urls_are_resolved_again_just_before_the_build(world: World) -> None:
    """A name that resolves to this machine (its loopback services) is refused at build time,
    even though it looked like a public name when the push was checked."""
    files = static_site("fetched")
    files["Dockerfile"] = files["Dockerfile"].replace(
        "COPY public /www", "ADD http://files.example.com/data.tar /data.tar\nCOPY public /www")
    world.deployer.builds.resolve = lambda host: {"files.example.com": ["127.0.0.1"]}.get(host, [])
    with pytest.raises(InvalidSource, match=r"files.example.com resolves to 127.0.0.1, a loopback address"):
        world.deploy(world.push(files))
    assert world.builder.sizes == {}  # nothing was built
    world.deployer.builds.resolve = lambda host: ["93.184.215.14"]
    world.deploy(world.push({**files, "public/index.html": "fetched, public\n"}))


def test_a_stateful_service_is_released_stop_first_and_resumed_when_the_release_fails(world: World) -> None:
    """Two containers never share one volume: the old one is halted before the new one starts,
    started again if the new one fails, and removed once the release is live."""
    app = world.store.get_app(APP)
    db1 = ServiceSpec(name="db", image="reg/shop/db@sha256:" + "1" * 64, volumes=("data:/var/lib/db",))
    db2 = replace(db1, image="reg/shop/db@sha256:" + "2" * 64)
    world.deployer.release(app, "a" * 40, (db1,), None, world.said.append)
    old = world.only_container()

    world.orchestrator.fail_ready.add("db")
    world.events.clear()
    with pytest.raises(DeployFailed):
        world.deployer.release(app, "b" * 40, (db2,), None, world.said.append)
    assert world.only_container() == old  # running again, the failed new one removed
    kinds = [e.split()[0] for e in world.events]
    assert kinds == ["halt", "start", "stop", "resume"], world.events
    assert any("first: it keeps data in a volume" in line for line in world.said)

    world.orchestrator.fail_ready.clear()
    world.events.clear()
    world.deployer.release(app, "c" * 40, (db2,), None, world.said.append)
    new = world.only_container()
    assert new.id != old.id and new.state == "running"
    assert [e.split()[0] for e in world.events] == ["halt", "start", "ready", "monitor", "stop"], world.events
    assert not [e for e in world.events if "SHARED VOLUME" in e]
    assert [v.name for v in world.orchestrator.volumes(APP, "production")] == ["data"]


# -- images as the target has them: pinned by digest, their VOLUMEs kept ------------------------------
def test_an_image_named_by_a_tag_is_pinned_by_digest_in_the_release(world: World) -> None:
    world.orchestrator.registry_digests["redis:7"] = "sha256:" + "e" * 64
    files = {**static_site("v1"), "docker-compose.yml": "services:\n  web:\n    build: .\n    ports: ['8000']\n"
                                                         "  cache:\n    image: redis:7\n"}
    release = world.deploy(world.push(files))
    stored = {s.name: s for s in world.releases()[release].services}
    assert stored["cache"].image == "redis@sha256:" + "e" * 64
    assert stored["cache"].image_id.startswith("sha256:")
    assert any("cache: redis:7 is sha256:eeeeeeeeeeee" in line for line in world.said)
    # the tag moves upstream: the next deploy replaces the container; unchanged, it is kept
    world.deploy(world.push({**files, "public/index.html": "v2\n"}))
    assert any("cache: unchanged" in line for line in world.said)
    world.orchestrator.registry_digests["redis:7"] = "sha256:" + "f" * 64
    world.orchestrator.missing.discard("redis:7")
    before = [c.id for c in world.running() if c.service == "cache"]
    world.deploy(world.push({**files, "public/index.html": "v3\n"}))
    assert [c.id for c in world.running() if c.service == "cache"] != before


def test_an_images_volumes_are_kept_across_releases_and_make_it_stop_first(world: World) -> None:
    world.orchestrator.image_volumes["redis:7"] = ("/data",)
    files = {**static_site("v1"), "docker-compose.yml": "services:\n  web:\n    build: .\n    ports: ['8000']\n"
                                                         "  db:\n    image: redis:7\n    volumes: [/logs]\n"}
    release = world.deploy(world.push(files))
    stored = {s.name: s for s in world.releases()[release].services}
    assert stored["db"].volumes == ("db.logs:/logs", "db.data:/data")
    assert [v.name for v in world.orchestrator.volumes(APP, "production")] == ["db.data", "db.logs"]
    world.orchestrator.registry_digests["redis:7"] = "sha256:" + "a" * 64  # a new image: a new container
    world.deploy(world.push({**files, "public/index.html": "v2\n"}))
    assert any("Stopping db of release" in line and "first" in line for line in world.said)
    assert "SHARED VOLUME" not in " ".join(world.events)  # never two containers on one volume
