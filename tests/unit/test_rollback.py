"""Rollback on the fakes: an environment returns to an earlier release by its record (images by
digest, stack, configuration), through the same release path, recorded as a new release; what
cannot be returned to is refused and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.domain.errors import Conflict, DeployFailed, DockyardError, NotFound
from dockyard.domain.model import JobStatus, ReleaseStatus
from dockyard.services.rollback import Rollbacks
from tests.support import static_site
from tests.unit.test_environments import APP, World


class RollbackWorld(World):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.rollbacks = Rollbacks(self.store, self.deployer.releaser, self.submit)

    def roll_back(self, env: str = "production", release: int | None = None) -> int:
        job = self.rollbacks.queue(APP, env, "tester", release)
        assert (job.kind, job.environment) == ("rollback", env)
        self.rollbacks.rollback_job(job, self.said.append)
        self.store.finish_job(job.id, JobStatus.SUCCEEDED)
        live = self.store.live_release(APP, env)
        assert live is not None
        return live.id

    def images(self, env: str = "production") -> set[str]:
        return {c.image for c in self.orchestrator.observe(APP) if c.environment == env}


@pytest.fixture
def world(tmp_path: Path) -> RollbackWorld:
    return RollbackWorld(tmp_path)


def test_a_rollback_returns_to_the_release_before_the_live_one_as_a_new_release(world: RollbackWorld) -> None:
    v1 = world.deploy("production", static_site("v1", version="1.0"))
    v2 = world.deploy("production", static_site("v2", version="2.0"))
    images_v2 = world.images()
    v3 = world.deploy("production", static_site("v3", version="3.0"))
    builds = len(world.builder.sizes)
    world.said.clear()

    back = world.roll_back()
    assert back not in (v1, v2, v3)
    record, target = world.store.get_release(back), world.store.get_release(v2)
    assert record.commit == target.commit and record.status == ReleaseStatus.LIVE
    assert [s.image for s in record.services] == [s.image for s in target.services]
    assert record.artifact == target.artifact and record.config == target.config
    assert world.images() == images_v2  # what runs is v2's, by digest
    assert world.store.get_release(v3).status == ReleaseStatus.SUPERSEDED
    assert any(f"Rolling back {APP} to release {v2}" in line for line in world.said), world.said
    assert len(world.builder.sizes) == builds and not any("Building" in line for line in world.said)  # nothing built
    # by default the next rollback goes one further back: the release before the live one (v2's copy)
    assert world.rollbacks.target(APP, "production").id == v3


def test_a_rollback_to_a_named_release_and_in_another_environment(world: RollbackWorld) -> None:
    world.envs.create(APP, "recette", branch="develop")
    r1 = world.deploy("recette", static_site("r1"), branch="develop")
    world.deploy("recette", static_site("r2", version="2.0"), branch="develop")
    world.deploy("recette", static_site("r3", version="3.0"), branch="develop")
    p1 = world.deploy("production", static_site("p1"))
    before = world.images("production")
    back = world.roll_back("recette", r1)
    assert world.store.get_release(back).commit == world.store.get_release(r1).commit
    assert world.images("production") == before  # production untouched
    with pytest.raises(NotFound, match=f"{APP}'s environment production has no release {r1}"):
        world.rollbacks.queue(APP, "production", "tester", r1)  # recette's release
    assert world.store.live_release(APP, "production").id == p1  # type: ignore[union-attr]


def test_what_cannot_be_returned_to_is_refused_and_queues_nothing(world: RollbackWorld) -> None:
    with pytest.raises(DockyardError, match="has no earlier release to roll back to"):
        world.rollbacks.queue(APP, "production", "tester")
    live = world.deploy("production", static_site("v1"))
    with pytest.raises(DockyardError, match="has no earlier release to roll back to"):
        world.rollbacks.queue(APP, "production", "tester")
    with pytest.raises(Conflict, match=f"release {live} is .*'s live release already"):
        world.rollbacks.queue(APP, "production", "tester", live)
    world.orchestrator.fail_ready.add("web")
    with pytest.raises(DeployFailed):
        world.deploy("production", static_site("v2", version="2.0"))
    failed = max(r.id for r in world.store.list_releases(APP))
    with pytest.raises(DockyardError, match=f"release {failed} of .* never served \\(failed\\)"):
        world.rollbacks.queue(APP, "production", "tester", failed)
    with pytest.raises(NotFound, match="has no release 999"):
        world.rollbacks.queue(APP, "production", "tester", 999)
    assert not [j for j in world.queued if j.kind == "rollback"]
    assert world.store.live_release(APP, "production").id == live  # type: ignore[union-attr]


def test_a_no_op_deploy_is_skipped_by_the_default_target_and_a_rollback_is_not_watched(world: RollbackWorld) -> None:
    v1 = world.deploy("production", static_site("v1", version="1.0"))
    world.deploy("production", static_site("v2", version="2.0"))
    world.deploy("production", static_site("v2", version="2.0"))  # the same again: a release that changes nothing
    assert world.rollbacks.target(APP, "production").id == v1
    world.events.clear()
    world.roll_back()
    assert not [e for e in world.events if e.startswith("monitor")]  # it served before: no window
    assert [e.split()[0] for e in world.events] == ["start", "ready", "route", "drain", "stop"], world.events


def test_a_release_whose_images_were_collected_is_refused_early(world: RollbackWorld) -> None:
    v1 = world.deploy("production", static_site("v1", version="1.0"))
    world.deploy("production", static_site("v2", version="2.0"))
    [image] = [i for i in world.store.list_images(APP) if i.version == "1.0"]
    assert world.store.collect_images(APP, image.repository, image.digest) == 1  # as dockyard gc does
    with pytest.raises(DockyardError, match=f"release {v1} of .* cannot be returned to: its image "
                                            f"{image.repository}@sha256:.* went with garbage collection") as info:
        world.rollbacks.queue(APP, "production", "tester", v1)
    assert "DOCKYARD_KEEP_RELEASES" in info.value.hint
    with pytest.raises(DockyardError, match="cannot be returned to"):
        world.rollbacks.queue(APP, "production", "tester")  # the default target too
