"""The release layer hands the orchestrator a service's tasks together (ready for Swarm): one
``start`` per service with every replica it starts, one ``wait_ready`` for them, one ``stop`` for
a service's old tasks; never one call per container. On the fakes, through the Deployer."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dockyard.domain.model import HttpCheck, RunningService, ServiceSpec
from dockyard.fakes import FakeOrchestrator
from tests.support import static_site
from tests.unit.test_deployer import World
from tests.unit.test_deployer import world as world  # the fixture, re-exported


class CallsOrchestrator(FakeOrchestrator):
    """The fake, recording each call of the port with the replicas it was given."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(events)
        self.calls: list[tuple[str, str, tuple[int, ...]]] = []

    def start(self, app: str, release: int, environment: str, service: ServiceSpec,
              replicas: Sequence[int] = (0,)) -> list[RunningService]:
        self.calls.append(("start", service.name, tuple(replicas)))
        return super().start(app, release, environment, service, replicas)

    def wait_ready(self, tasks: Sequence[RunningService], timeout: float, check: HttpCheck | None = None) -> None:
        self.calls.append(("wait_ready", _one_service(tasks), tuple(t.replica for t in tasks)))
        super().wait_ready(tasks, timeout, check)

    def stop(self, tasks: Sequence[RunningService]) -> None:
        self.calls.append(("stop", _one_service(tasks), tuple(t.replica for t in tasks)))
        super().stop(tasks)

    def halt(self, tasks: Sequence[RunningService]) -> None:
        self.calls.append(("halt", _one_service(tasks), tuple(t.replica for t in tasks)))
        super().halt(tasks)


def compose(replicas: int, tag: str = "1") -> dict[str, str]:
    return {**static_site("v1"), "docker-compose.yml": f"services:\n  web:\n    image: nginx:{tag}\n"
                                                       f"    ports: ['8000']\n    deploy: {{replicas: {replicas}}}\n"}


def web_containers(world: World) -> list[RunningService]:
    return sorted((c for c in world.running() if c.state == "running"), key=lambda c: c.replica)


def _one_service(tasks: Sequence[RunningService]) -> str:
    names = {t.service for t in tasks}
    assert len(names) == 1, f"one call, one service: {names}"
    return names.pop()


@pytest.fixture
def recorded(world: World) -> tuple[World, CallsOrchestrator]:
    orchestrator = CallsOrchestrator(world.events)
    world.orchestrator = orchestrator
    world.deployer.orchestrator = orchestrator
    world.deployer.releaser.orchestrator = orchestrator
    return world, orchestrator


def test_a_release_of_three_replicas_is_one_start_and_one_wait(recorded: tuple[World, CallsOrchestrator]) -> None:
    world, orchestrator = recorded
    world.deploy(world.push(compose(3)))
    assert orchestrator.calls == [("start", "web", (0, 1, 2)), ("wait_ready", "web", (0, 1, 2))]
    assert len(web_containers(world)) == 3


def test_replacing_three_replicas_stops_the_old_ones_in_one_call(recorded: tuple[World, CallsOrchestrator]) -> None:
    world, orchestrator = recorded
    world.deploy(world.push(compose(3)))
    orchestrator.calls.clear()
    world.deploy(world.push(compose(3, "2")))
    assert orchestrator.calls == [("start", "web", (0, 1, 2)), ("wait_ready", "web", (0, 1, 2)),
                                  ("stop", "web", (0, 1, 2))]


def test_scaling_up_starts_only_the_missing_replicas_together(recorded: tuple[World, CallsOrchestrator]) -> None:
    world, orchestrator = recorded
    world.deploy(world.push(compose(1)))
    orchestrator.calls.clear()
    world.deploy(world.push(compose(4)))
    assert orchestrator.calls == [("start", "web", (1, 2, 3)), ("wait_ready", "web", (1, 2, 3))]


def test_a_start_that_fails_midway_leaves_no_task_and_the_old_ones_serve(
        recorded: tuple[World, CallsOrchestrator]) -> None:
    world, orchestrator = recorded
    world.deploy(world.push(compose(2)))
    old = web_containers(world)
    orchestrator.calls.clear()
    orchestrator.fail_start.add("web#1")  # replica 0 starts, replica 1 cannot
    with pytest.raises(Exception, match="cannot start web"):
        world.deploy(world.push(compose(2, "2")))
    # the orchestrator removed the replica 0 it had started (all or none); the release had none to undo
    assert orchestrator.calls == [("start", "web", (0, 1)), ("stop", "web", (0,))]
    assert web_containers(world) == old and len(world.running()) == 2
    assert [e.split()[0] for e in world.events[-2:]] == ["start", "stop"]
