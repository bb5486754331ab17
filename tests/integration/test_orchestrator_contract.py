"""The Orchestrator contract, run against the in-memory FakeOrchestrator and a real
DockerOrchestrator alike, so the fake the unit tests rely on behaves as the Docker engine does.

A fake cannot run a command, so each service below comes with what its command does (what it
prints, whether it exits, whether it answers HTTP); the fake side scripts that, the real engine
just runs the command. On the real side every container and network the adapter creates is also
checked for the defaults dockyard promises (limits, labels, a subnet from its pool).
"""

from __future__ import annotations

import ipaddress
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import docker
import pytest

from dockyard.adapters.docker_client import labels
from dockyard.adapters.docker_orchestrator import DockerOrchestrator, Pool
from dockyard.domain.errors import Conflict, DeployFailed, NotFound
from dockyard.domain.model import RunningService, ServiceSpec
from dockyard.fakes import FakeOrchestrator
from dockyard.ports import Orchestrator
from tests.support import BASE_IMAGE, sweep, wait_until

pytestmark = pytest.mark.integration

PREFIX = "dytest-orch"
HTTPD = ("httpd", "-f", "-p", "8000", "-h", "/www")  # /www exists in the image: a 404 is an answer


@dataclass(frozen=True)
class Program:
    """A service, and what its command does: what the fake must script to behave the same."""

    spec: ServiceSpec
    prints: tuple[str, ...] = ()
    exits: bool = False  # exits before it is ready
    answers: bool = True  # a web service answers HTTP on its port


WEB = Program(ServiceSpec("web", BASE_IMAGE, 8000, command=HTTPD))
WORKER = Program(ServiceSpec("worker", BASE_IMAGE, command=("sh", "-c", "echo one; echo two; exec sleep 600")),
                 prints=("one", "two"))
CRASH = Program(ServiceSpec("crash", BASE_IMAGE, command=("sh", "-c", "echo boom; exit 3")), prints=("boom",),
                exits=True)
DEAF = Program(ServiceSpec("deaf", BASE_IMAGE, 8000, command=("sleep", "600")), answers=False)


# -- the two sides ----------------------------------------------------------------------------------
@dataclass
class Side:
    name: str
    orchestrator: Orchestrator
    base_image_id: str  # what a built image is run by: its content id
    script: Callable[[Program], None]  # make the fake do what the command does
    networks: Callable[[str], int]  # how many networks the app has
    neighbours: Callable[[str], None]  # containers that are not the app's, for observe to ignore

    def start(self, app: str, release: int, program: Program, environment: str = "production") -> RunningService:
        self.script(program)
        return self.orchestrator.start(app, release, environment, program.spec)


def fake_side() -> Side:
    fake = FakeOrchestrator()

    def script(program: Program) -> None:
        name = program.spec.name
        fake.output[name] = list(program.prints)
        if program.exits:
            fake.fail_ready.add(name)
        if not program.answers:
            fake.never_ready.add(name)

    def neighbours(app: str) -> None:
        # the data plane's containers carry no app (a FakeOrchestrator is one installation)
        for role in ("proxy", "registry"):
            fake.containers[role] = RunningService(role, "", "", 0, BASE_IMAGE, "running")

    return Side("fake", fake, "sha256:" + "b" * 64, script, lambda app: int(app in fake.networks), neighbours)


DEFAULT_HOST_CONFIG = {
    "PidsLimit": 1024,
    "Memory": 1024**3,
    "LogConfig": {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}},
    "Init": True,
}


class CheckedDockerOrchestrator(DockerOrchestrator):
    """The real adapter, unchanged; after each network and container it creates, this checks
    what every one of them must carry."""

    def app_networks(self, app: str) -> list[dict[str, Any]]:
        """Found by label: the engine's name filter matches parts of names."""
        found = self.api.networks(filters={"label": [f"dockyard.installation={self.installation}",
                                                     f"dockyard.app={app}"]})
        return [dict(self.api.inspect_network(n["Id"])) for n in found]

    def ensure_network(self, app: str) -> None:
        super().ensure_network(app)
        pool = ipaddress.IPv4Network(self.pool.network)
        for net in self.app_networks(app):
            if net["Name"] == self._legacy_network_name(app):
                continue  # made by dockyard before names carried the installation
            assert self.installation in net["Name"], net["Name"]
            assert net["Driver"] == "bridge"
            subnets = [ipaddress.IPv4Network(c["Subnet"]) for c in net["IPAM"]["Config"]]
            assert len(subnets) == 1 and subnets[0].subnet_of(pool) and subnets[0].prefixlen == self.pool.prefix, (
                net["Name"], subnets, pool)

    def start(self, app: str, release: int, environment: str, service: ServiceSpec) -> RunningService:
        running = super().start(app, release, environment, service)
        info = self.api.inspect_container(running.id)
        host = info["HostConfig"]
        assert {k: host[k] for k in DEFAULT_HOST_CONFIG} == DEFAULT_HOST_CONFIG
        assert "no-new-privileges:true" in host["SecurityOpt"], host["SecurityOpt"]
        assert host["NetworkMode"] == self.network_name(app)
        assert info["Config"]["Labels"] == labels(
            self.installation, app=app, environment=environment, service=service.name, release=str(release),
            spec=service.spec_hash, port=str(service.port or ""))
        if running.upstream is not None:
            (net,) = self.app_networks(app)
            address = ipaddress.IPv4Address(running.upstream.rpartition(":")[0])
            assert address in ipaddress.IPv4Network(net["IPAM"]["Config"][0]["Subnet"]), (address, net["IPAM"])
        return running


@pytest.fixture
def docker_side(engine: docker.DockerClient) -> Iterator[Side]:
    installation = f"contract{uuid.uuid4().hex[:8]}"
    real = CheckedDockerOrchestrator(engine, installation, PREFIX, {})
    installations = [installation]  # everything any of them made is removed at the end

    def networks(app: str) -> int:
        return len(real.app_networks(app))

    def neighbours(app: str) -> None:
        other = f"contract{uuid.uuid4().hex[:8]}"
        installations.append(other)
        for container_labels in (
            labels(other, app=app, environment="production", service="web", release="1", port="8000"),
            labels(installation, role="proxy"),  # the data plane: its installation's, no app
        ):
            engine.containers.run(BASE_IMAGE, ["sleep", "600"], detach=True, init=True, labels=container_labels,
                                  network_mode="none",  # the engine here may have no default bridge
                                  name=f"{PREFIX}-{uuid.uuid4().hex[:8]}")

    try:
        yield Side("docker", real, engine.images.get(BASE_IMAGE).id, lambda program: None, networks, neighbours)
    finally:
        for each in installations:
            sweep(engine, each)
            label = {"label": f"dockyard.installation={each}"}
            assert engine.containers.list(all=True, filters=label) == []
            assert engine.networks.list(filters=label) == []
            assert engine.volumes.list(filters=label) == []


@pytest.fixture(params=["fake", "docker"])
def side(request: pytest.FixtureRequest) -> Side:
    if request.param == "fake":
        return fake_side()
    real: Side = request.getfixturevalue("docker_side")
    return real


# -- networks -------------------------------------------------------------------------------------
def test_ensure_network_is_idempotent(side: Side) -> None:
    orch = side.orchestrator
    assert side.networks("shop") == 0
    with pytest.raises(DeployFailed, match="web"):
        side.start("shop", 1, WEB)  # no network yet
    assert orch.observe("shop") == []  # nothing left behind by the failed start

    orch.ensure_network("shop")
    orch.ensure_network("shop")
    assert side.networks("shop") == 1
    assert side.start("shop", 1, WEB).state == "running"
    orch.ensure_network("shop")  # with a container on it
    assert side.networks("shop") == 1


def test_remove_network_after_stop(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    web = side.start("shop", 1, WEB)
    orch.stop(web)
    orch.remove_network("shop")
    assert side.networks("shop") == 0
    with pytest.raises(DeployFailed, match="web"):
        side.start("shop", 2, WEB)
    orch.remove_network("shop")  # again: harmless
    orch.ensure_network("shop")  # and the app can come back
    assert side.networks("shop") == 1
    assert side.start("shop", 2, WEB).state == "running"


def test_network_of_an_app_whose_name_another_app_extends(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop-blue")
    orch.ensure_network("shop")
    assert side.networks("shop") == 1
    assert side.start("shop", 1, WORKER).state == "running"


def test_remove_network_leaves_other_apps_networks(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    orch.ensure_network("shop-blue")
    orch.remove_network("shop")
    assert side.networks("shop") == 0
    assert side.networks("shop-blue") == 1
    assert side.start("shop-blue", 1, WORKER).state == "running"


# -- containers -----------------------------------------------------------------------------------
def test_start_reports_what_it_was_given(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    built = replace(WEB, spec=replace(WEB.spec, image="registry.test:5000/shop/web@sha256:" + "c" * 64,
                                      image_id=side.base_image_id, environment=(("GREETING", "hi"),)))
    web = side.start("shop", 3, built, environment="staging")
    worker = side.start("shop", 3, WORKER, environment="staging")

    assert (web.app, web.service, web.release, web.environment, web.state) == ("shop", "web", 3, "staging", "running")
    assert web.spec_hash == built.spec.spec_hash and web.spec_hash != WEB.spec.spec_hash
    assert web.image == side.base_image_id  # a built image runs by its content id
    assert web.upstream is not None
    host, _, port = web.upstream.rpartition(":")
    assert port == "8000"
    assert ipaddress.IPv4Address(host).is_private

    assert (worker.app, worker.service, worker.release, worker.environment, worker.state) == (
        "shop", "worker", 3, "staging", "running")
    assert worker.spec_hash == WORKER.spec.spec_hash
    assert worker.image == BASE_IMAGE
    assert worker.upstream is None  # not a web service: nothing to route to

    again = side.start("shop", 4, WEB)
    assert again.id != web.id and again.upstream not in (None, web.upstream)
    assert len({web.id, worker.id, again.id}) == 3


def test_observe_finds_by_app_sorted_and_only_its_own(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    orch.ensure_network("blog")
    shop_web_2 = side.start("shop", 2, WEB)
    shop_worker_1 = side.start("shop", 1, WORKER)
    blog_web_1 = side.start("blog", 1, WEB)
    shop_web_1 = side.start("shop", 1, WEB)
    side.neighbours("shop")

    shop = [shop_web_1, shop_web_2, shop_worker_1]  # by service, then release
    assert orch.observe("shop") == shop
    assert orch.observe("blog") == [blog_web_1]
    assert orch.observe() == [blog_web_1, *shop]
    assert orch.observe("nobody") == []


def test_wait_ready_returns_once_a_web_service_answers(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    web = side.start("shop", 1, WEB)
    worker = side.start("shop", 1, WORKER)
    orch.wait_ready(web, 30)
    orch.wait_ready(worker, 30)  # not a web service: running is ready
    assert [c.state for c in orch.observe("shop")] == ["running", "running"]


def test_wait_ready_fails_with_the_last_output_when_the_service_exits(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    crash = side.start("shop", 1, CRASH)
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready(crash, 30)
    assert re.match(r"service crash exited \(code \d+\) before it was ready", caught.value.message), caught.value
    assert "boom" in caught.value.message.split("Its last output:", 1)[1]
    assert "docker run" in caught.value.hint


def test_wait_ready_fails_when_a_web_service_never_answers(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    deaf = side.start("shop", 1, DEAF)
    begun = time.monotonic()
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready(deaf, 2)
    assert time.monotonic() - begun < 15
    assert caught.value.message.startswith("service deaf did not answer HTTP on its port within 2s"), caught.value
    assert "EXPOSE" in caught.value.hint


def test_wait_ready_of_a_removed_container_fails_as_a_deploy(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    web = side.start("shop", 1, WEB)
    orch.stop(web)
    with pytest.raises(DeployFailed, match="web"):
        orch.wait_ready(web, 5)


def test_stop_removes_it_from_observe(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    web = side.start("shop", 1, WEB)
    worker = side.start("shop", 1, WORKER)
    orch.stop(web)
    assert orch.observe("shop") == [worker]
    orch.stop(web)  # again: harmless
    orch.stop(worker)
    assert orch.observe("shop") == []
    assert orch.observe() == []


def test_halt_keeps_the_container_and_resume_starts_it_again(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    web = side.start("shop", 1, WEB)
    orch.wait_ready(web, 10)
    orch.halt(web)
    (halted,) = orch.observe("shop")
    assert (halted.id, halted.state) == (web.id, "exited")
    orch.resume(web)
    (again,) = wait_until(lambda: [c for c in orch.observe("shop") if c.state == "running"], 10, "it to run again")
    assert again.id == web.id
    orch.wait_ready(again, 10)
    orch.stop(web)
    assert orch.observe("shop") == []


def test_named_volumes_are_scoped_listed_and_removed_only_when_unused(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    keeper = Program(replace(WORKER.spec, volumes=("data:/data",)), prints=WORKER.prints)
    container = side.start("shop", 1, keeper)
    (volume,) = orch.volumes("shop", "production")
    assert (volume.name, volume.app, volume.environment, volume.used_by) == ("data", "shop", "production",
                                                                           ("worker",))
    assert orch.volumes("shop", "recette") == [] and orch.volumes("blog", "production") == []
    with pytest.raises(Conflict):
        orch.remove_volume("shop", "production", "data")  # a container mounts it
    orch.stop(container)
    assert orch.volumes("shop", "production")[0].used_by == ()
    orch.remove_volume("shop", "production", "data")
    assert orch.volumes("shop", "production") == []
    with pytest.raises(NotFound):
        orch.remove_volume("shop", "production", "data")


# -- logs -----------------------------------------------------------------------------------------
@dataclass
class Reader:
    """Reads an iterator of lines in a thread of its own, as the API's log stream does."""

    lines: Iterator[str]
    got: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=lambda: self.got.extend(self.lines), daemon=True)
        self.thread.start()

    def ended(self) -> bool:
        return not self.thread.is_alive()


def test_logs_yields_the_lines_of_the_apps_containers(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    orch.ensure_network("blog")
    side.start("shop", 4, WORKER)
    side.start("blog", 1, WEB)  # prints nothing, another app anyway
    both = ["worker[r4] | one", "worker[r4] | two"]
    wait_until(lambda: list(orch.logs("shop", False, 100)) == both, 20, "the worker's two lines")
    assert list(orch.logs("shop", False, 1)) == ["worker[r4] | two"]
    assert list(orch.logs("shop", False, 0)) == []
    assert list(orch.logs("blog", False, 100)) == []
    assert list(orch.logs("nobody", True, 100)) == []  # no container: nothing to follow


def test_logs_follow_ends_when_stop_is_set(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    side.start("shop", 4, WORKER)
    stop = threading.Event()
    reader = Reader(orch.logs("shop", True, 100, stop))
    try:
        wait_until(lambda: reader.got == ["worker[r4] | one", "worker[r4] | two"], 20, "the worker's two lines")
        assert not reader.ended()  # following: the container still runs
    finally:
        stop.set()
    wait_until(reader.ended, 5, "the log stream to end once stop is set")
    assert reader.got == ["worker[r4] | one", "worker[r4] | two"]


def test_logs_follow_ends_when_the_apps_containers_stop(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop")
    worker = side.start("shop", 4, WORKER)
    stop = threading.Event()
    reader = Reader(orch.logs("shop", True, 100, stop))
    try:
        wait_until(lambda: len(reader.got) == 2, 20, "the worker's two lines")
        orch.stop(worker)
        wait_until(reader.ended, 20, "the log stream to end once the app's container is gone")
    finally:
        stop.set()  # never leave the reader behind, even when the stream did not end


# -- the real engine only ---------------------------------------------------------------------------
class LegacyDockerOrchestrator(DockerOrchestrator):
    """As dockyard was before network names carried the installation: ``<prefix>-<app>``."""

    def network_name(self, app: str) -> str:
        return self._legacy_network_name(app)


def test_a_container_from_before_networks_carried_the_installation_is_still_served(
    docker_side: Side, engine: docker.DockerClient
) -> None:
    real = docker_side.orchestrator
    assert isinstance(real, CheckedDockerOrchestrator)
    app = f"legacy{uuid.uuid4().hex[:6]}"  # the legacy network's name has no installation in it
    old = LegacyDockerOrchestrator(engine, real.installation, PREFIX, {})
    old.ensure_network(app)
    web = old.start(app, 1, "production", WEB.spec)
    legacy = engine.networks.get(f"{PREFIX}-{app}")
    address = engine.api.inspect_container(web.id)["NetworkSettings"]["Networks"][legacy.name]["IPAddress"]

    real.ensure_network(app)  # the next deploy: the new network beside the old one
    (seen,) = real.observe(app)
    assert seen == replace(web, upstream=f"{address}:8000")
    real.wait_ready(seen, 30)

    real.stop(seen)
    real.remove_network(app)
    assert docker_side.networks(app) == 0  # the legacy network went too
    assert engine.networks.list(names=[f"{PREFIX}-{app}"]) == []


def test_networks_come_from_the_pool_passed(docker_side: Side, engine: docker.DockerClient) -> None:
    real = docker_side.orchestrator
    assert isinstance(real, CheckedDockerOrchestrator)
    pooled = CheckedDockerOrchestrator(engine, real.installation, PREFIX, {}, pool=Pool("10.218.0.0/16", 28))
    pooled.ensure_network("shop")  # checked: a /28 of 10.218.0.0/16, named with the installation
    web = pooled.start("shop", 1, "production", WEB.spec)  # checked: its address is in that subnet
    assert web.upstream is not None and web.upstream.startswith("10.218.")
    pooled.wait_ready(web, 30)
