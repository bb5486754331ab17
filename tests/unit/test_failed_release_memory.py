"""A failed release is remembered: the same commit with the same services is not released again
until something changes (a new commit, a variable, the replica count...), unless forced; a
release dockyard was interrupted in the middle of is no failure of its own."""

from __future__ import annotations

import dataclasses

import pytest

from dockyard.domain.errors import DeployFailed
from dockyard.domain.model import ReleaseStatus
from dockyard.services.recovery import INTERRUPTED
from tests.support import static_site
from tests.unit.test_deployer import APP, World
from tests.unit.test_deployer import world as world  # the fixture, re-exported


def deploy(world: World, commit: str, **payload: str) -> None:
    job = world.store.enqueue("deploy", APP, {"commit": commit, "branch": "main", **payload})
    world.deployer.deploy_job(job, world.said.append)


def failed_once(world: World) -> tuple[int, str]:
    live = world.deploy(world.push(static_site("v1")))
    world.orchestrator.fail_ready.add("web")
    commit = world.push(static_site("v2", version="2.0"))
    with pytest.raises(DeployFailed, match="exited"):
        deploy(world, commit)
    return live, commit


def test_the_same_failed_release_is_not_tried_again_and_nothing_starts(world: World) -> None:
    live, commit = failed_once(world)
    world.orchestrator.fail_ready.clear()  # it would work now: still, nothing changed on dockyard's side
    world.events.clear()
    with pytest.raises(DeployFailed) as info:
        deploy(world, commit)
    assert "of this commit, with these same services, failed: service web exited" in info.value.message
    assert "Nothing changed since, so it is not tried again" in info.value.message
    assert "--force" in info.value.hint
    assert world.events == []  # nothing started, nothing recorded
    assert [r.status for r in world.store.list_releases(APP)] == [ReleaseStatus.FAILED, ReleaseStatus.LIVE]
    assert world.store.live_release(APP, "production").id == live  # type: ignore[union-attr]


def test_a_change_or_force_releases_it_again(world: World) -> None:
    _, commit = failed_once(world)
    world.orchestrator.fail_ready.clear()
    deploy(world, commit, force="true")
    assert world.store.live_release(APP, "production").commit == commit  # type: ignore[union-attr]

    world.orchestrator.fail_ready.add("web")
    again = world.push(static_site("v3", version="3.0"))
    with pytest.raises(DeployFailed, match="exited"):
        deploy(world, again)
    world.orchestrator.fail_ready.clear()
    fixed = world.push(static_site("v3", version="3.1"))  # a new commit: not refused
    deploy(world, fixed)
    assert world.store.live_release(APP, "production").commit == fixed  # type: ignore[union-attr]


def test_the_same_commit_with_other_services_is_a_change(world: World) -> None:
    _, commit = failed_once(world)
    world.orchestrator.fail_ready.clear()
    failed = world.store.list_releases(APP, 1)[0]
    other = tuple(dataclasses.replace(s, environment=(("MODE", "fixed"),)) for s in failed.services)
    assert other[0].spec_hash != failed.services[0].spec_hash  # a variable changes what runs
    world.deployer.releaser.release(world.store.get_app(APP), "production", commit, other, None, world.said.append)
    assert world.store.live_release(APP, "production").commit == commit  # type: ignore[union-attr]


def test_an_interrupted_release_is_no_failure_of_its_own(world: World) -> None:
    live = world.deploy(world.push(static_site("v1")))
    commit = world.push(static_site("v2", version="2.0"))
    world.store.set_release(world.store.create_release(APP, "production", commit, None), ReleaseStatus.FAILED,
                            world.store.get_release(live).services, error=INTERRUPTED)
    deploy(world, commit)  # the resumed job goes on
    assert world.store.live_release(APP, "production").commit == commit  # type: ignore[union-attr]
