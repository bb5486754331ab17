"""Acting on a running release (abort, pause, resume) and its progress deadline, on the fakes: the
release is driven from inside one of its steps (the ``prepare`` hook every start calls), as a user
acting from another terminal would be."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from dockyard.domain.errors import Conflict, DeployFailed
from dockyard.domain.model import ReleaseStatus, ServiceSpec
from tests.support import static_site
from tests.unit.test_deployer import APP, World
from tests.unit.test_deployer import world as world  # the fixture, re-exported


def during_start(world: World, act: Callable[[], None]) -> None:
    """Run ``act`` as the release starts its new container (then leave the service as it is)."""
    def prepare(app: str, environment: str, service: ServiceSpec) -> ServiceSpec:
        act()
        return service
    world.deployer.releaser.prepare = prepare


def test_an_abort_rolls_the_release_back(world: World) -> None:
    live = world.deploy(world.push(static_site("v1")))
    before = world.only_container()
    releaser = world.deployer.releaser
    during_start(world, lambda: releaser.act(APP, "production", "abort", "ana"))
    with pytest.raises(DeployFailed, match="was aborted by ana"):
        world.deploy(world.push(static_site("v2", version="2.0")))
    assert world.running() == [before]
    failed = world.store.list_releases(APP, 1)[0]
    assert failed.status == ReleaseStatus.FAILED and failed.error == f"release {failed.id} was aborted by ana"
    assert world.store.live_release(APP, "production").id == live  # type: ignore[union-attr]


def test_a_pause_holds_the_release_until_resumed(world: World) -> None:
    world.deploy(world.push(static_site("v1")))
    releaser = world.deployer.releaser
    states: list[object] = []

    def pause() -> None:
        states.append(releaser.act(APP, "production", "pause", "ana")["state"])
        threading.Timer(0.3, lambda: states.append(releaser.act(APP, "production", "resume", "bo")["state"])).start()

    during_start(world, pause)
    new = world.deploy(world.push(static_site("v2", version="2.0")))
    assert states == ["paused", "running"]
    assert any("paused by ana: waiting" in line for line in world.said) and "-----> resumed" in world.said
    assert world.store.live_release(APP, "production").id == new  # type: ignore[union-attr]


def test_a_release_past_its_deadline_fails(world: World) -> None:
    world.deploy(world.push(static_site("v1")))
    world.deployer.releaser.progress_deadline = 0.0
    with pytest.raises(DeployFailed, match="passed its progress deadline of 0s"):
        world.deploy(world.push(static_site("v2", version="2.0")))


def test_acting_when_no_release_runs_is_refused(world: World) -> None:
    with pytest.raises(Conflict, match="no release of shop's environment production is running"):
        world.deployer.releaser.act(APP, "production", "pause", "ana")
