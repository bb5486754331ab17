"""The monitor window: after the switch the new containers must keep running (and healthy) for a
while before the old ones go; a crash in it rolls the release back to the old containers, which
are still there. The planner (pure) and the Deployer on the fakes."""

from __future__ import annotations

import dataclasses

import pytest

from dockyard.domain.errors import DeployFailed
from dockyard.domain.model import Release, ReleaseStatus, Route, RunningService, ServiceSpec
from dockyard.planning.deploy import Drain, Monitor, RouteTraffic, StopTasks, plan_release
from tests.support import static_site
from tests.unit.test_deployer import APP, HOSTS, ROUTE_ID, World
from tests.unit.test_deployer import world as world  # the fixture, re-exported

IMG1 = "reg:5000/shop/shop@sha256:" + "1" * 64
IMG2 = "reg:5000/shop/shop@sha256:" + "2" * 64
WEB = ServiceSpec(name="web", image=IMG1, port=3000, hosts=("shop.localhost",))
MIGRATE = ServiceSpec(name="migrate", image=IMG1, one_shot=True)


def old(service: ServiceSpec) -> RunningService:
    return RunningService(id=f"{service.name}-old", app="shop", service=service.name, release=1, image=IMG1,
                          state="running", upstream="10.0.0.2:3000", spec_hash="stale")


def test_the_new_containers_are_watched_after_the_switch_and_before_the_old_ones_go() -> None:
    new = dataclasses.replace(WEB, image=IMG2)
    actions = plan_release(Release(2, "shop", "c" * 40, (new, MIGRATE)), [old(WEB)])
    monitor = actions.index(Monitor(("web",)))  # a one-shot service is not watched: it exits by design
    assert monitor > actions.index(RouteTraffic(new))
    assert monitor < min(i for i, a in enumerate(actions) if isinstance(a, Drain | StopTasks))


def test_nothing_started_nothing_watched() -> None:
    kept = dataclasses.replace(old(WEB), spec_hash=WEB.spec_hash)
    assert not any(isinstance(a, Monitor) for a in plan_release(Release(2, "shop", "c" * 40, (WEB,)), [kept]))


def test_a_crash_in_the_monitor_window_rolls_back_to_the_old_containers(world: World) -> None:
    first = world.deploy(world.push(static_site("v1")))
    before = world.only_container()
    world.orchestrator.crash_after_switch.add("web")
    world.said.clear()
    with pytest.raises(DeployFailed, match=r"exited \(code 1\) 0\.5s after the switch"):
        world.deploy(world.push(static_site("v2", version="2.0")))
    assert world.running() == [before]  # the old container kept running, the new one is gone
    assert world.proxy.routes() == [Route(ROUTE_ID, HOSTS, (str(before.upstream),))]  # routed back
    releases = world.releases()
    assert releases[first + 1].status == ReleaseStatus.FAILED and "after the switch" in str(releases[first + 1].error)
    assert world.store.live_release(APP, "production").id == first  # type: ignore[union-attr]
    assert any("Watching 1 new container for 5s" in line for line in world.said), world.said
    assert " !     Release failed; the previous release keeps serving." in world.said


def test_a_zero_window_watches_nothing(world: World) -> None:
    world.deployer.releaser.monitor_seconds = 0
    world.orchestrator.crash_after_switch.add("web")
    world.deploy(world.push(static_site("v1")))
    assert not [e for e in world.events if e.startswith("monitor")]
