"""Garbage collection (services/gc.py) on the in-memory fakes and a real SQLite store: what a run
removes from the host and the registry, what it keeps, that a dry run changes nothing, that a
rollback to a kept release still works, that a version stays bound after its image is gone, and
that pushes wait while the registry collects."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from dockyard.domain.model import JobStatus
from dockyard.services.build import PushGate
from dockyard.services.gc import Collector
from dockyard.services.rollback import Rollbacks
from tests.support import static_site
from tests.unit.test_environments import APP, World


class GcWorld(World):
    def __init__(self, tmp_path: Path, keep: int = 2) -> None:
        super().__init__(tmp_path)
        self.gc = Collector(self.store, self.builder, self.registry, self.orchestrator, self.deployer.builds.gate,
                            keep_releases=keep, interval=0)
        self.rollbacks = Rollbacks(self.store, self.deployer.releaser, self.submit)

    def versions(self) -> list[str]:
        return sorted(i.version for i in self.store.list_images(APP))

    def image(self, version: str) -> tuple[str, str, str]:
        found = next(i for i in self.store.list_images(APP) if i.version == version)
        return found.image_id, found.repository, found.tag


@pytest.fixture
def world(tmp_path: Path) -> GcWorld:
    return GcWorld(tmp_path)


def push_versions(world: GcWorld, count: int, env: str = "production") -> list[int]:
    return [world.deploy(env, static_site(f"v{n}", version=f"{n}.0")) for n in range(1, count + 1)]


def test_a_run_removes_images_beyond_the_newest_releases_from_host_and_registry(world: GcWorld) -> None:
    releases = push_versions(world, 4)
    old = {v: world.image(v) for v in ("1.0", "2.0")}

    report = world.gc.run()

    assert sorted(i["tag"] for i in report.removed) == ["1.0", "2.0"]
    assert sorted(i["tag"] for i in report.kept) == ["3.0", "4.0"]
    assert {i["tag"]: i["why"] for i in report.kept} == {
        "4.0": f"release {releases[3]} is production's live release",
        "3.0": f"release {releases[2]} is one of production's 2 newest"}
    assert world.versions() == ["3.0", "4.0"]
    assert sorted(world.builder.removed) == sorted(image_id for image_id, _, _ in old.values())
    for image_id, repository, tag in old.values():
        assert world.registry.config_digest(repository, tag) is None
        assert world.store.collected_image(repository, tag) == image_id  # the version stays bound
    assert world.registry.config_digest(*world.image("3.0")[1:]) == world.image("3.0")[0]
    assert (report.local_images, report.manifests, report.registry_blobs) == (2, 2, 2)
    assert report.local_bytes > 0 and world.registry.collections == 1 and report.notes == []
    assert "removed 2 image(s), kept 2" in report.summary()

    again = world.gc.run()  # nothing left to do
    assert again.removed == [] and again.manifests == 0 and world.registry.collections == 1


def test_a_dry_run_says_what_would_go_and_changes_nothing(world: GcWorld) -> None:
    push_versions(world, 3)
    bound = dict(world.registry.bound)

    report = world.gc.run(dry_run=True)

    assert report.dry_run and [i["tag"] for i in report.removed] == ["1.0"]
    assert world.versions() == ["1.0", "2.0", "3.0"] and world.builder.removed == []
    assert world.registry.bound == bound and world.registry.collections == 0
    assert report.local_images == report.manifests == 0
    assert report.summary().startswith("would remove 1 image(s)")


def test_a_rollback_to_a_kept_release_works_after_a_run(world: GcWorld) -> None:
    releases = push_versions(world, 4)
    world.gc.run()
    job = world.rollbacks.queue(APP, "production", "tester", releases[2])
    world.rollbacks.rollback_job(job, world.said.append)
    world.store.finish_job(job.id, JobStatus.SUCCEEDED)
    live = world.store.live_release(APP, "production")
    assert live is not None and live.commit == world.store.get_release(releases[2]).commit
    running = {c.image for c in world.orchestrator.observe(APP)}
    assert running == {world.image("3.0")[0]} and world.image("3.0")[0] not in world.builder.removed
    # the rollback is the newest release now: 3.0 and 4.0 are still the two kept
    assert sorted(i["tag"] for i in world.gc.run().kept) == ["3.0", "4.0"]


def test_each_environment_keeps_its_own_newest_releases(world: GcWorld) -> None:
    world.envs.create(APP, "recette")
    push_versions(world, 3)
    world.deploy("recette", static_site("v1", version="1.0"))  # the same build as production's 1.0
    report = world.gc.run()
    assert sorted({i["tag"] for i in report.kept}) == ["1.0", "2.0", "3.0"]  # 1.0 twice: pushed twice
    assert report.removed == []


def test_an_image_a_foreign_container_uses_stays_with_a_note_and_is_tried_again(world: GcWorld) -> None:
    push_versions(world, 3)
    image_id, repository, tag = world.image("1.0")
    world.builder.in_use.add(image_id)

    report = world.gc.run()

    assert report.local_images == 0 and report.manifests == 1
    assert report.notes == [f"{image_id[7:19]} stays on this host: a container uses it"]
    assert world.registry.config_digest(repository, tag) is None
    assert world.versions() == ["1.0", "2.0", "3.0"]  # still here: the next run tries again
    world.builder.in_use.clear()
    again = world.gc.run()
    assert again.local_images == 1 and again.manifests == 0 and world.versions() == ["2.0", "3.0"]


def test_an_app_with_a_job_queued_keeps_its_images(world: GcWorld) -> None:
    push_versions(world, 3)
    world.store.enqueue("deploy", APP, {"commit": "0" * 40, "branch": "main"})
    report = world.gc.run()
    assert report.removed == [] and {i["why"] for i in report.kept} >= {f"a job of {APP} is queued or running"}


def test_a_version_stays_bound_to_its_first_build_after_its_image_is_collected(world: GcWorld) -> None:
    push_versions(world, 3)
    world.gc.run()
    assert "1.0" not in world.versions()
    first = world.image("2.0")  # still there: the contrast
    # the same VERSION, other content: a distinct version, as if 1.0 were still in the registry
    world.deploy("production", static_site("something else", version="1.0"))
    newest = world.store.list_images(APP)[0]
    assert newest.version.startswith("1.0+g") and newest.tag != "1.0"
    assert any("already bound to another build" in line for line in world.said)
    assert world.image("2.0") == first


def test_pushes_wait_while_the_gate_is_closed_and_a_collection_waits_for_pushes() -> None:
    gate = PushGate()
    events: list[str] = []
    pushing, release_push = threading.Event(), threading.Event()

    def push() -> None:
        with gate.push():
            events.append("push")
            pushing.set()
            release_push.wait(5)

    def collect() -> None:
        with gate.closed():
            events.append("collect")

    first = threading.Thread(target=push)
    first.start()
    assert pushing.wait(5)
    collector = threading.Thread(target=collect)
    collector.start()
    time.sleep(0.1)
    assert events == ["push"]  # the collection waits for the push under way
    second = threading.Thread(target=push)
    second.start()
    time.sleep(0.1)
    assert events == ["push"]  # a new push waits behind the closing gate
    release_push.set()
    for t in (first, collector, second):
        t.join(5)
    assert events == ["push", "collect", "push"]


def test_the_schedule_runs_collections_until_stopped(world: GcWorld) -> None:
    push_versions(world, 3)
    world.gc.interval = 0.05
    stopping = threading.Event()
    thread = world.gc.schedule(stopping)
    assert thread is not None
    deadline = time.monotonic() + 5
    while "1.0" in world.versions() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert world.versions() == ["2.0", "3.0"]
    stopping.set()
    thread.join(5)
    assert not thread.is_alive()
    world.gc.interval = 0
    assert world.gc.schedule(threading.Event()) is None  # 0: no schedule

