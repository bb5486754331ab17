"""The Orchestrator contract, run against the in-memory FakeOrchestrator and a real
DockerOrchestrator alike, so the fake the unit tests rely on behaves as the Docker engine does.

A fake cannot run a command, so each service below comes with what its command does (what it
prints, whether it exits, whether it answers HTTP); the fake side scripts that, the real engine
just runs the command. On the real side every container and network the adapter creates is also
checked for the defaults dockyard promises (limits, labels, a subnet from its pool).
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import docker
import pytest

from dockyard.adapters.docker_client import labels
from dockyard.adapters.docker_orchestrator import DockerOrchestrator, Pool
from dockyard.domain.errors import Conflict, DeployFailed, NotFound
from dockyard.domain.model import HttpCheck, RunningService, ServiceSpec
from dockyard.fakes import FakeOrchestrator
from dockyard.ports import Orchestrator
from tests.support import BASE_IMAGE, free_port, sweep, wait_until

pytestmark = pytest.mark.integration

PREFIX = "dytest-orch"
HTTPD = ("httpd", "-f", "-p", "8000", "-h", "/www")  # /www exists in the image: a 404 is an answer


@dataclass(frozen=True)
class Program:
    """A service, and what its command does: what the fake must script to behave the same."""

    spec: ServiceSpec
    prints: tuple[str, ...] = ()
    exits: bool = False  # exits before it is ready (a one-shot service: with a code other than 0)
    answers: bool = True  # a web service answers HTTP on its port
    healthy: bool = True  # its healthcheck passes
    check_answers: int = 200  # what GET of its HTTP check's path answers
    looks_up: tuple[str, ...] = ()  # names it resolves on its network (and fails when one does not resolve)


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

    def start(self, app: str, release: int, program: Program, environment: str = "production",
              replica: int = 0) -> RunningService:
        """One task: the start of a set of one replica."""
        (task,) = self.start_all(app, release, program, environment, (replica,))
        return task

    def start_all(self, app: str, release: int, program: Program, environment: str = "production",
                  replicas: Sequence[int] = (0,)) -> list[RunningService]:
        self.script(program)
        return self.orchestrator.start(app, release, environment, program.spec, replicas)


def fake_side() -> Side:
    fake = FakeOrchestrator()

    def script(program: Program) -> None:
        name = program.spec.name
        fake.output[name] = list(program.prints)
        if program.exits:
            fake.fail_ready.add(name)
        if not program.answers:
            fake.never_ready.add(name)
        if not program.healthy:
            fake.unhealthy.add(name)
        fake.check_answers[name] = program.check_answers
        if program.looks_up:
            fake.lookups[name] = program.looks_up

    def neighbours(app: str) -> None:
        # the data plane's containers carry no app (a FakeOrchestrator is one installation)
        for role in ("proxy", "registry"):
            fake.containers[role] = RunningService(role, "", "", 0, BASE_IMAGE, "running")

    return Side("fake", fake, "sha256:" + "b" * 64, script, lambda app: sum(1 for a, _ in fake.networks if a == app), neighbours)


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

    def ensure_network(self, app: str, environment: str) -> None:
        super().ensure_network(app, environment)
        pool = ipaddress.IPv4Network(self.pool.network)
        for net in self.app_networks(app):
            if net["Name"] == self._legacy_network_name(app):
                continue  # made by dockyard before names carried the installation
            assert self.installation in net["Name"], net["Name"]
            assert net["Driver"] == "bridge"
            subnets = [ipaddress.IPv4Network(c["Subnet"]) for c in net["IPAM"]["Config"]]
            assert len(subnets) == 1 and subnets[0].subnet_of(pool) and subnets[0].prefixlen == self.pool.prefix, (
                net["Name"], subnets, pool)

    def start(self, app: str, release: int, environment: str, service: ServiceSpec,
              replicas: Sequence[int] = (0,)) -> list[RunningService]:
        started = super().start(app, release, environment, service, replicas)
        assert [t.replica for t in started] == list(replicas)  # one task per replica, in order
        for replica, running in zip(replicas, started, strict=True):
            self._check(app, release, environment, service, replica, running)
        return started

    def _check(self, app: str, release: int, environment: str, service: ServiceSpec, replica: int,
               running: RunningService) -> None:
        info = self.api.inspect_container(running.id)
        host = info["HostConfig"]
        limits = {**DEFAULT_HOST_CONFIG, "PidsLimit": service.pids or 1024, "Memory": service.memory or 1024**3}
        assert {k: host[k] for k in limits} == limits  # the defaults, unless the service gives its own
        assert "no-new-privileges:true" in host["SecurityOpt"], host["SecurityOpt"]
        assert host["NetworkMode"] == self.network_name(app, environment)
        assert info["Config"]["Labels"] == {**dict(label.split("=", 1) for label in service.labels), **labels(
            self.installation, app=app, environment=environment, service=service.name, release=str(release),
            spec=service.spec_hash, port=str(service.port or ""), replica=str(replica),
            **({"run": "once"} if service.one_shot else {}))}
        assert f"-{service.name}-{replica}-r{release}-" in info["Name"], info["Name"]
        if running.upstream is not None:
            (net,) = [n for n in self.app_networks(app) if n["Name"] == self.network_name(app, environment)]
            address = ipaddress.IPv4Address(running.upstream.rpartition(":")[0])
            assert address in ipaddress.IPv4Network(net["IPAM"]["Config"][0]["Subnet"]), (address, net["IPAM"])


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

    orch.ensure_network("shop", "production")
    orch.ensure_network("shop", "production")
    assert side.networks("shop") == 1
    assert side.start("shop", 1, WEB).state == "running"
    orch.ensure_network("shop", "production")  # with a container on it
    assert side.networks("shop") == 1


def test_remove_network_after_stop(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web = side.start("shop", 1, WEB)
    orch.stop([web])
    orch.remove_network("shop", "production")
    assert side.networks("shop") == 0
    with pytest.raises(DeployFailed, match="web"):
        side.start("shop", 2, WEB)
    orch.remove_network("shop", "production")  # again: harmless
    orch.ensure_network("shop", "production")  # and the app can come back
    assert side.networks("shop") == 1
    assert side.start("shop", 2, WEB).state == "running"


def test_network_of_an_app_whose_name_another_app_extends(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop-blue", "production")
    orch.ensure_network("shop", "production")
    assert side.networks("shop") == 1
    assert side.start("shop", 1, WORKER).state == "running"


def test_environments_of_one_app_have_networks_of_their_own(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    with pytest.raises(DeployFailed, match="web"):
        side.start("shop", 1, WEB, environment="recette")  # recette has no network yet
    orch.ensure_network("shop", "recette")
    assert side.networks("shop") == 2
    prod = side.start("shop", 1, WEB)
    recette = side.start("shop", 2, WEB, environment="recette")
    assert [(c.environment, c.release) for c in orch.observe("shop")] == [("production", 1), ("recette", 2)]
    assert prod.upstream != recette.upstream
    orch.stop([recette])
    orch.remove_network("shop", "recette")  # production's stays, and keeps serving
    assert side.networks("shop") == 1
    orch.wait_ready([prod], 30)
    assert [c.id for c in orch.observe("shop")] == [prod.id]


def test_remove_network_leaves_other_apps_networks(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    orch.ensure_network("shop-blue", "production")
    orch.remove_network("shop", "production")
    assert side.networks("shop") == 0
    assert side.networks("shop-blue") == 1
    assert side.start("shop-blue", 1, WORKER).state == "running"


# -- containers -----------------------------------------------------------------------------------
def test_start_reports_what_it_was_given(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    orch.ensure_network("shop", "staging")
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
    orch.ensure_network("shop", "production")
    orch.ensure_network("blog", "production")
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
    orch.ensure_network("shop", "production")
    web = side.start("shop", 1, WEB)
    worker = side.start("shop", 1, WORKER)
    orch.wait_ready([web], 30)
    orch.wait_ready([worker], 30)  # not a web service: running is ready
    assert [c.state for c in orch.observe("shop")] == ["running", "running"]


def test_wait_ready_fails_with_the_last_output_when_the_service_exits(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    crash = side.start("shop", 1, CRASH)
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready([crash], 30)
    assert re.match(r"service crash exited \(code \d+\) before it was ready", caught.value.message), caught.value
    assert "boom" in caught.value.message.split("Its last output:", 1)[1]
    assert "docker run" in caught.value.hint


def test_wait_ready_fails_when_a_web_service_never_answers(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    deaf = side.start("shop", 1, DEAF)
    begun = time.monotonic()
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready([deaf], 2)
    assert time.monotonic() - begun < 15
    assert caught.value.message.startswith("service deaf did not answer HTTP on its port within 2s"), caught.value
    assert "EXPOSE" in caught.value.hint


def test_wait_ready_of_a_removed_container_fails_as_a_deploy(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web = side.start("shop", 1, WEB)
    orch.stop([web])
    with pytest.raises(DeployFailed, match="web"):
        orch.wait_ready([web], 5)


def test_stop_removes_it_from_observe(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web = side.start("shop", 1, WEB)
    worker = side.start("shop", 1, WORKER)
    orch.stop([web])
    assert orch.observe("shop") == [worker]
    orch.stop([web])  # again: harmless
    orch.stop([worker])
    assert orch.observe("shop") == []
    assert orch.observe() == []


def test_halt_keeps_the_container_and_resume_starts_it_again(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web = side.start("shop", 1, WEB)
    orch.wait_ready([web], 10)
    orch.halt([web])
    (halted,) = orch.observe("shop")
    assert (halted.id, halted.state) == (web.id, "exited")
    orch.resume([web])
    (again,) = wait_until(lambda: [c for c in orch.observe("shop") if c.state == "running"], 10, "it to run again")
    assert again.id == web.id
    orch.wait_ready([again], 10)
    orch.stop([web])
    assert orch.observe("shop") == []


def test_named_volumes_are_scoped_listed_and_removed_only_when_unused(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    keeper = Program(replace(WORKER.spec, volumes=("data:/data",)), prints=WORKER.prints)
    container = side.start("shop", 1, keeper)
    (volume,) = orch.volumes("shop", "production")
    assert (volume.name, volume.app, volume.environment, volume.used_by) == ("data", "shop", "production",
                                                                           ("worker",))
    assert orch.volumes("shop", "recette") == [] and orch.volumes("blog", "production") == []
    with pytest.raises(Conflict):
        orch.remove_volume("shop", "production", "data")  # a container mounts it
    orch.stop([container])
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
    orch.ensure_network("shop", "production")
    orch.ensure_network("blog", "production")
    side.start("shop", 4, WORKER)
    side.start("blog", 1, WEB)  # prints nothing, another app anyway
    both = ["worker[r4] | one", "worker[r4] | two"]
    wait_until(lambda: list(orch.logs("shop", "production", False, 100)) == both, 20, "the worker's two lines")
    assert list(orch.logs("shop", "production", False, 1)) == ["worker[r4] | two"]
    assert list(orch.logs("shop", "production", False, 0)) == []
    assert list(orch.logs("blog", "production", False, 100)) == []
    assert list(orch.logs("nobody", "production", True, 100)) == []  # no container: nothing to follow


def test_logs_follow_ends_when_stop_is_set(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    side.start("shop", 4, WORKER)
    stop = threading.Event()
    reader = Reader(orch.logs("shop", "production", True, 100, stop))
    try:
        wait_until(lambda: reader.got == ["worker[r4] | one", "worker[r4] | two"], 20, "the worker's two lines")
        assert not reader.ended()  # following: the container still runs
    finally:
        stop.set()
    wait_until(reader.ended, 5, "the log stream to end once stop is set")
    assert reader.got == ["worker[r4] | one", "worker[r4] | two"]


def test_logs_follow_ends_when_the_apps_containers_stop(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    worker = side.start("shop", 4, WORKER)
    stop = threading.Event()
    reader = Reader(orch.logs("shop", "production", True, 100, stop))
    try:
        wait_until(lambda: len(reader.got) == 2, 20, "the worker's two lines")
        orch.stop([worker])
        wait_until(reader.ended, 20, "the log stream to end once the app's container is gone")
    finally:
        stop.set()  # never leave the reader behind, even when the stream did not end


# -- the real engine only ---------------------------------------------------------------------------
class LegacyDockerOrchestrator(DockerOrchestrator):
    """As dockyard was before network names carried the installation: ``<prefix>-<app>``."""

    def network_name(self, app: str, environment: str = "production") -> str:
        return self._legacy_network_name(app)


def test_a_container_from_before_networks_carried_the_installation_is_still_served(
    docker_side: Side, engine: docker.DockerClient
) -> None:
    real = docker_side.orchestrator
    assert isinstance(real, CheckedDockerOrchestrator)
    app = f"legacy{uuid.uuid4().hex[:6]}"  # the legacy network's name has no installation in it
    old = LegacyDockerOrchestrator(engine, real.installation, PREFIX, {})
    old.ensure_network(app, "production")
    (web,) = old.start(app, 1, "production", WEB.spec)
    legacy = engine.networks.get(f"{PREFIX}-{app}")
    address = engine.api.inspect_container(web.id)["NetworkSettings"]["Networks"][legacy.name]["IPAddress"]

    real.ensure_network(app, "production")  # the next deploy: the new network beside the old one
    (seen,) = real.observe(app)
    assert seen == replace(web, upstream=f"{address}:8000")
    real.wait_ready([seen], 30)

    real.stop([seen])
    real.remove_network(app, "production")
    assert docker_side.networks(app) == 0  # the legacy network went too
    assert engine.networks.list(names=[f"{PREFIX}-{app}"]) == []


def test_networks_come_from_the_pool_passed(docker_side: Side, engine: docker.DockerClient) -> None:
    real = docker_side.orchestrator
    assert isinstance(real, CheckedDockerOrchestrator)
    pooled = CheckedDockerOrchestrator(engine, real.installation, PREFIX, {}, pool=Pool("10.218.0.0/16", 28))
    pooled.ensure_network("shop", "production")  # checked: a /28 of 10.218.0.0/16, named with the installation
    (web,) = pooled.start("shop", 1, "production", WEB.spec)  # checked: its address is in that subnet
    assert web.upstream is not None and web.upstream.startswith("10.218.")
    pooled.wait_ready([web], 30)


# -- compose keys: healthchecks, one-shot services, names on the app network ----------------------------
MS = 10**6
SLOW_START = ("sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 600")
HEALTHY = Program(ServiceSpec("db", BASE_IMAGE, command=SLOW_START, healthcheck=("CMD", "test", "-f", "/tmp/ready"),
                              health_interval=200 * MS, health_start_period=10_000 * MS, health_retries=1))
SICK = Program(ServiceSpec("sick", BASE_IMAGE, command=("sh", "-c", "echo starting; exec sleep 600"),
                           healthcheck=("CMD-SHELL", "echo no answer; exit 1"), health_interval=200 * MS,
                           health_retries=1), prints=("starting",), healthy=False)
MIGRATE = Program(ServiceSpec("migrate", BASE_IMAGE, command=("sh", "-c", "echo migrated; sleep 1"), one_shot=True),
                  prints=("migrated",))
BROKEN = Program(ServiceSpec("broken", BASE_IMAGE, command=("sh", "-c", "echo no database; exit 3"), one_shot=True),
                 prints=("no database",), exits=True)
NAMED = Program(ServiceSpec("db", BASE_IMAGE, command=("sleep", "600"), hostname="database",
                            aliases=("database", "db1", "replica")))


def probe(*names: str) -> Program:
    """A one-shot service that resolves ``names`` on its network, and fails if one leads nowhere."""
    script = "for n in " + " ".join(names) + "; do nslookup $n || exit 1; done"
    return Program(ServiceSpec("probe", BASE_IMAGE, command=("sh", "-c", script), one_shot=True), looks_up=names)


# An HTTP server whose /up turns 200 after a second (404 before), and whose /cgi-bin/broken answers 500.
CHECKED = ("sh", "-c", "mkdir -p /tmp/w/cgi-bin && printf '#!/bin/sh\\necho Status: 500 Broken\\necho\\n' "
           "> /tmp/w/cgi-bin/broken; chmod +x /tmp/w/cgi-bin/broken; (sleep 1; echo up > /tmp/w/up) & "
           "exec httpd -f -p 8000 -h /tmp/w")


def test_wait_ready_with_an_http_check_waits_until_its_path_answers(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web = side.start("shop", 1, Program(ServiceSpec("web", BASE_IMAGE, 8000, command=CHECKED)))
    orch.wait_ready([web], 30, HttpCheck("/up", interval=1.0, timeout=2.0))
    assert [c.state for c in orch.observe("shop")] == ["running"]


@pytest.mark.parametrize(("path", "status", "answer"), [("/cgi-bin/broken", 0, 500), ("/nowhere", 0, 404),
                                                      ("/up", 204, 200)])
def test_wait_ready_fails_when_the_http_check_answers_another_status(side: Side, path: str, status: int,
                                                                     answer: int) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web = side.start("shop", 1, Program(ServiceSpec("web", BASE_IMAGE, 8000, command=CHECKED), check_answers=answer))
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready([web], 3, HttpCheck(path, status))
    expected = status or "2xx or 3xx"
    assert caught.value.message.startswith(
        f"service web did not pass its health check (GET {path}, expecting {expected}) within 3s: it answered {answer}."
    ), caught.value
    assert "dockyard.yml" in caught.value.hint


def test_wait_ready_waits_until_a_service_with_a_healthcheck_is_healthy(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    db = side.start("shop", 1, HEALTHY)
    orch.wait_ready([db], 30)
    assert [c.state for c in orch.observe("shop")] == ["running"]


def test_wait_ready_fails_with_the_health_log_when_a_service_is_unhealthy(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    sick = side.start("shop", 1, SICK)
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready([sick], 30)
    assert caught.value.message.startswith("service sick is unhealthy. Its healthcheck's last results:\nexit 1: ")
    assert "starting" in caught.value.message.split("Its last output:", 1)[1]
    assert "docker exec" in caught.value.hint


def test_a_one_shot_service_is_ready_once_it_exited_0_and_stays_exited(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    migrate = side.start("shop", 1, MIGRATE)
    assert (migrate.state, migrate.exit_code) == ("running", None)
    orch.wait_ready([migrate], 30)
    (done,) = orch.observe("shop")
    assert (done.id, done.state, done.exit_code, done.spec_hash) == (migrate.id, "exited", 0, MIGRATE.spec.spec_hash)
    orch.stop([done])
    assert orch.observe("shop") == []


def test_a_one_shot_service_that_exits_with_another_code_fails_with_its_output(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    broken = side.start("shop", 1, BROKEN)
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready([broken], 30)
    assert re.match(r"service broken runs once and must exit with code 0: it exited with code \d+\. Its last output:",
                    caught.value.message), caught.value.message
    assert "no database" in caught.value.message
    (seen,) = orch.observe("shop")
    assert seen.state == "exited" and seen.exit_code not in (None, 0)


def test_hostname_and_aliases_resolve_on_the_app_network_of_its_environment_only(side: Side) -> None:
    orch = side.orchestrator
    for app, environment in (("shop", "production"), ("shop", "staging"), ("blog", "production")):
        orch.ensure_network(app, environment)
    db = side.start("shop", 1, NAMED)
    orch.wait_ready(side.start_all("shop", 1, probe("db", "database", "db1", "replica")), 30)
    for app, environment in (("blog", "production"), ("shop", "staging")):
        with pytest.raises(DeployFailed, match="runs once and must exit with code 0"):
            orch.wait_ready(side.start_all(app, 1, probe("replica"), environment=environment), 30)
    orch.stop([db])
    with pytest.raises(DeployFailed, match="runs once and must exit with code 0"):
        orch.wait_ready(side.start_all("shop", 2, probe("replica")), 30)  # gone with its container


def test_replicas_are_containers_of_their_own_labelled_and_named_by_index(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    replicas = [side.start("shop", 2, WEB, replica=i) for i in (2, 0, 1)]
    assert [c.replica for c in replicas] == [2, 0, 1]
    assert len({c.id for c in replicas}) == len({c.upstream for c in replicas}) == 3
    assert [c.replica for c in orch.observe("shop")] == [0, 1, 2]  # by service, release, then replica
    orch.wait_ready(replicas, 30)
    # every replica answers to the service's name on the app network (DNS round-robin, as Compose)
    orch.wait_ready(side.start_all("shop", 2, probe("web")), 30)
    orch.stop([next(c for c in replicas if c.replica == 1)])
    assert [c.replica for c in orch.observe("shop") if c.service == "web"] == [0, 2]


def test_a_container_started_without_a_replica_is_replica_0(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    side.script(WEB)
    (web,) = orch.start("shop", 1, "production", WEB.spec)  # no replicas given: replica 0 alone
    assert web.replica == 0 and [c.replica for c in orch.observe("shop")] == [0]


def test_the_stop_grace_period_is_reported(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    worker = side.start("shop", 1, replace(WORKER, spec=replace(WORKER.spec, stop_grace_period=2)))
    web = side.start("shop", 1, WEB)
    assert (worker.stop_timeout, web.stop_timeout) == (2, None)
    assert [c.stop_timeout for c in orch.observe("shop")] == [None, 2]


# -- a service's tasks, as one set ---------------------------------------------------------------------
def test_start_of_several_replicas_gives_a_running_task_for_each(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    tasks = side.start_all("shop", 2, WEB, replicas=(0, 1, 2))  # checked (real side): each one's labels, name
    assert [t.replica for t in tasks] == [0, 1, 2]
    assert {(t.app, t.service, t.release, t.environment, t.state, t.spec_hash) for t in tasks} == {
        ("shop", "web", 2, "production", "running", WEB.spec.spec_hash)}
    assert len({t.id for t in tasks}) == 3
    upstreams = {t.upstream for t in tasks}
    assert len(upstreams) == 3 and all(u is not None and u.endswith(":8000") for u in upstreams), upstreams
    orch.wait_ready(tasks, 30)  # every one answers
    assert orch.observe("shop") == tasks  # by replica, all running


def test_wait_ready_of_a_set_fails_with_the_reason_of_the_task_that_is_not_ready(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web, crash = side.start("shop", 1, WEB), side.start("shop", 1, CRASH)
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready([web, crash], 30)
    assert re.match(r"service crash exited \(code \d+\) before it was ready", caught.value.message), caught.value
    assert "boom" in caught.value.message.split("Its last output:", 1)[1]


def test_a_set_shares_one_timeout_and_a_failure_names_the_whole_of_it(side: Side) -> None:
    """Two deaf replicas awaited together: the wait ends once, at the timeout given, and the
    message names that timeout (not what was left of it for the second one)."""
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    deaf = side.start_all("shop", 1, DEAF, replicas=(0, 1))
    with pytest.raises(DeployFailed) as caught:
        orch.wait_ready(deaf, 2)
    assert caught.value.message.startswith("service deaf did not answer HTTP on its port within 2s"), caught.value


def test_start_is_all_or_none_when_a_replica_cannot_start(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    worker = side.start("shop", 1, WORKER)
    # A host port Docker binds is held by one running container at a time: the 1st replica binds
    # it, the 2nd cannot start.
    bound = Program(replace(WORKER.spec, name="dns", published=((free_port(), 53, "tcp", "127.0.0.1"),)),
                    prints=WORKER.prints)
    with pytest.raises(DeployFailed, match=r"cannot start dns: .*port is already allocated"):
        side.start_all("shop", 2, bound, replicas=(0, 1, 2))
    assert orch.observe("shop") == [worker]  # the 1st replica went again; the other service stays
    (alone,) = side.start_all("shop", 2, bound)  # and it let go of the host port
    assert (alone.service, alone.replica, alone.state) == ("dns", 0, "running")
    assert [c.service for c in orch.observe("shop")] == ["dns", "worker"]


def test_stop_of_a_set_removes_every_task_even_when_one_is_gone_already(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    tasks = side.start_all("shop", 1, WEB, replicas=(0, 1, 2))
    worker = side.start("shop", 1, WORKER)
    orch.stop([tasks[1]])
    assert [c.replica for c in orch.observe("shop") if c.service == "web"] == [0, 2]
    orch.stop([tasks[1], tasks[0], tasks[2]])  # the one gone comes first: no error, the others go all the same
    assert orch.observe("shop") == [worker]


def test_halt_and_resume_of_a_set_and_a_task_gone_meanwhile(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    tasks = side.start_all("shop", 1, WORKER, replicas=(0, 1, 2))
    orch.wait_ready(tasks, 30)
    orch.halt(tasks)
    assert [(c.id, c.state) for c in orch.observe("shop")] == [(t.id, "exited") for t in tasks]
    orch.stop([tasks[0]])
    with pytest.raises(DeployFailed, match=r"cannot start worker of release 1 again"):
        orch.resume(tasks)  # each one tried; the failure raised after
    wait_until(lambda: [c.state for c in orch.observe("shop")] == ["running", "running"], 10, "the others to run again")
    assert [c.id for c in orch.observe("shop")] == [tasks[1].id, tasks[2].id]


# -- compose keys, the real engine only -----------------------------------------------------------------
def test_the_compose_keys_reach_the_container(docker_side: Side, engine: docker.DockerClient) -> None:
    real = docker_side.orchestrator
    assert isinstance(real, CheckedDockerOrchestrator)
    real.ensure_network("shop", "production")
    spec = replace(HEALTHY.spec, hostname="database", aliases=("database", "db1"), restart="on-failure:3",
                   labels=("team=shop", "tier="), user="65534:65534", working_dir="/tmp", stop_signal="SIGINT",
                   stop_grace_period=3, memory=64 * 1024**2, cpus=0.5, pids=100,
                   healthcheck=("CMD-SHELL", "test -w /tmp || test $(id -u) = 65534"),
                   command=("-c", "sleep 1; exec sleep 600"), entrypoint=("sh",))
    (db,) = real.start("shop", 1, "production", spec)  # checked: its limits and labels
    info = engine.api.inspect_container(db.id)
    config, host = info["Config"], info["HostConfig"]
    assert (config["Hostname"], config["User"], config["WorkingDir"]) == ("database", "65534:65534", "/tmp")
    assert (config["Entrypoint"], config["Cmd"]) == (["sh"], list(spec.command))
    assert (config["Labels"]["team"], config["Labels"]["tier"]) == ("shop", "")
    assert (config["StopSignal"], config["StopTimeout"]) == ("SIGINT", 3)
    assert config["Healthcheck"] == {"Test": list(spec.healthcheck), "Interval": 200 * MS,
                                     "StartPeriod": 10_000 * MS, "Retries": 1}
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (500_000_000, 64 * 1024**2, 100)
    (network,) = info["NetworkSettings"]["Networks"].values()
    assert {"db", "database", "db1"} <= set(network["Aliases"])
    assert not info["Name"].endswith(("database", "db1"))  # the container's own name stays dockyard's
    real.wait_ready([db], 30)
    assert engine.api.inspect_container(db.id)["State"]["Health"]["Status"] == "healthy"

    (once,) = real.start("shop", 1, "production", replace(MIGRATE.spec, entrypoint=()))
    once_info = engine.api.inspect_container(once.id)
    assert once_info["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert not once_info["Config"]["Entrypoint"]  # cleared: the command runs as given
    real.wait_ready([once], 30)


def test_without_compose_keys_a_container_is_made_as_before(docker_side: Side, engine: docker.DockerClient) -> None:
    real = docker_side.orchestrator
    real.ensure_network("shop", "production")
    (worker,) = real.start("shop", 1, "production", WORKER.spec)
    info = engine.api.inspect_container(worker.id)
    assert info["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped", "MaximumRetryCount": 0}
    assert info["Config"]["Hostname"] == "worker" and info["HostConfig"]["NanoCpus"] == 0
    assert "Healthcheck" not in info["Config"] and "StopTimeout" not in info["Config"]


def test_stop_gives_the_container_its_grace_period(docker_side: Side) -> None:
    real = docker_side.orchestrator
    real.ensure_network("shop", "production")
    stubborn = ServiceSpec("stubborn", BASE_IMAGE, command=("sh", "-c", "trap '' TERM; while :; do sleep 1; done"),
                           stop_grace_period=1)
    (container,) = real.start("shop", 1, "production", stubborn)
    begun = time.monotonic()
    real.stop([container])
    assert time.monotonic() - begun < 6  # its 1s, not the default 10s
    assert real.observe("shop") == []


# -- images as the target has them -------------------------------------------------------------------
def test_resolve_image_gives_its_id_and_volumes_and_pulls_only_when_asked(side: Side) -> None:
    orch = side.orchestrator
    found = orch.resolve_image(BASE_IMAGE)
    assert found is not None and found.image_id.startswith("sha256:")
    assert found.pinned == ""  # built on this host, never pulled from a registry: no registry digest
    assert found.volumes == ()
    assert orch.resolve_image(found.image_id) == found  # by its id too
    if isinstance(orch, FakeOrchestrator):
        orch.missing.add("registry.invalid/nothing:1")
    assert orch.resolve_image("registry.invalid/nothing:1", pull=False) is None
    with pytest.raises(DeployFailed, match=r"cannot pull registry\.invalid/nothing:1") if side.name == "docker" \
            else contextlib.nullcontext():
        orch.resolve_image("registry.invalid/nothing:1")


def test_resolve_image_reads_an_images_volumes(engine: docker.DockerClient, docker_side: Side) -> None:
    tag = f"dytest-volumes:{uuid.uuid4().hex[:8]}"
    dockerfile = f"FROM {BASE_IMAGE}\nVOLUME /data /var/log/app\n".encode()
    engine.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    try:
        found = docker_side.orchestrator.resolve_image(tag)
        assert found is not None and found.volumes == ("/data", "/var/log/app") and found.pinned == ""
    finally:
        engine.images.remove(tag, force=True)


# -- draining -------------------------------------------------------------------------------------
def test_drain_returns_at_once_when_nothing_is_open(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web, worker = side.start("shop", 1, WEB), side.start("shop", 1, WORKER)
    orch.wait_ready([web], 30)
    assert orch.drain([web, worker], 5) == 0
    assert [c.state for c in orch.observe("shop")] == ["running", "running"]  # drained, not stopped


def test_drain_waits_for_an_open_connection_and_gives_up_at_the_timeout(docker_side: Side) -> None:
    orch = docker_side.orchestrator
    orch.ensure_network("shop", "production")
    web = docker_side.start("shop", 1, WEB)
    orch.wait_ready([web], 30)
    assert web.upstream is not None
    host, _, port = web.upstream.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as client:  # a request under way
        begun = time.monotonic()
        assert orch.drain([web], 1.0) == 1
        assert time.monotonic() - begun >= 1.0  # it waited for it, up to the timeout
        closer = threading.Timer(0.5, client.close)
        closer.start()
        assert orch.drain([web], 30) == 0  # returns once the connection is gone
        closer.join()


# -- the monitor window ---------------------------------------------------------------------------
def test_monitor_returns_after_the_window_when_the_containers_keep_running(side: Side) -> None:
    orch = side.orchestrator
    orch.ensure_network("shop", "production")
    web = side.start("shop", 1, Program(ServiceSpec("web", BASE_IMAGE, 8000, command=CHECKED)))
    orch.wait_ready([web], 30, HttpCheck("/up"))
    orch.monitor([web], 0.5, {"web": HttpCheck("/up")})
    assert [c.state for c in orch.observe("shop")] == ["running"]


def test_monitor_fails_as_soon_as_a_new_container_exits(docker_side: Side) -> None:
    orch = docker_side.orchestrator
    orch.ensure_network("shop", "production")
    dies = Program(ServiceSpec("web", BASE_IMAGE, 8000, restart="no",
                               command=("sh", "-c", "httpd -p 8000 -h /www; sleep 1; echo bye; exit 4")))
    web = docker_side.start("shop", 1, dies)
    orch.wait_ready([web], 30)
    begun = time.monotonic()
    with pytest.raises(DeployFailed) as caught:
        orch.monitor([web], 30, {})
    assert time.monotonic() - begun < 15  # as soon as it exits, not at the end of the window
    assert re.match(r"service web exited \(code 4\) [0-9.]+s after the switch", caught.value.message), caught.value
    assert "bye" in caught.value.message


def test_monitor_fails_for_a_container_docker_restarted_since_it_was_ready(docker_side: Side) -> None:
    """It exited and its restart policy started it again before the window (or between two
    looks): running now, but it crashed. Docker counts restarts in the inspect's RestartCount."""
    orch = docker_side.orchestrator
    orch.ensure_network("shop", "production")
    crashes = Program(ServiceSpec("worker", BASE_IMAGE, command=("sh", "-c", "sleep 1.5; echo bye; exit 4")))
    worker = docker_side.start("shop", 1, crashes)
    orch.wait_ready([worker], 30)  # still running a second after it started
    client = docker.from_env()
    try:
        wait_until(lambda: (lambda a: a["RestartCount"] >= 1 and a["State"]["Running"] and not a["State"]["Restarting"])(
            client.api.inspect_container(worker.id)), 20, "Docker to restart it", interval=0.05)
    finally:
        client.close()
    with pytest.raises(DeployFailed, match=r"service worker exited and was restarted \(1 time\) [0-9.]+s after"):
        orch.monitor([worker], 0.3, {})


def test_monitor_fails_when_the_http_check_stops_passing(docker_side: Side) -> None:
    orch = docker_side.orchestrator
    orch.ensure_network("shop", "production")
    web = docker_side.start("shop", 1, Program(ServiceSpec("web", BASE_IMAGE, 8000, command=CHECKED)))
    orch.wait_ready([web], 30, HttpCheck("/up"))
    with pytest.raises(DeployFailed, match=r"service web stopped passing its health check \(GET /cgi-bin/broken\) "
                                           r"after the switch: it answered 500"):
        orch.monitor([web], 0.2, {"web": HttpCheck("/cgi-bin/broken")})
