"""`dockyard scale` on the fakes: counts kept by the environment over compose's and dockyard.yml's,
applied to the live release at once (replicas that stay keep running), kept by the next deploy,
refused (changing nothing) where the service is missing or cannot run that many; a difference
with dockyard.yml is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.domain import declared, dockyard_file
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.domain.model import JobStatus
from dockyard.domain.replicas import counts_from_words
from dockyard.services.scale import Scaling
from tests.support import static_site
from tests.unit.test_environments import APP, World

COMPOSE = ("services:\n  web:\n    build: .\n    ports: ['8000']\n"
           "  db:\n    image: postgres\n    volumes: [data:/d]\nvolumes: {data: {}}\n")


class ScaleWorld(World):
    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.scaling = Scaling(self.store, self.deployer.releaser, self.submit)

    def scale(self, env: str = "production", **counts: int) -> int:
        job = self.scaling.set(APP, env, "tester", counts)
        assert (job.kind, job.environment) == ("scale", env)
        self.scaling.scale_job(job, self.said.append)
        self.store.finish_job(job.id, JobStatus.SUCCEEDED)
        return self.store.live_release(APP, env).id  # type: ignore[union-attr]

    def web(self, env: str = "production") -> list[str]:
        return [c.id for c in sorted(self.orchestrator.observe(APP), key=lambda c: c.replica)
                if c.service == "web" and c.environment == env]


@pytest.fixture
def world(tmp_path: Path) -> ScaleWorld:
    return ScaleWorld(tmp_path)


def test_words_are_service_equals_count() -> None:
    assert counts_from_words(["web=3", "worker=0"]) == {"web": 3, "worker": 0}
    for bad in ("web", "web=", "web=-1", "web=three", "web=99999"):
        with pytest.raises(InvalidSource, match="is not SERVICE=COUNT"):
            counts_from_words([bad])


def test_scaling_applies_at_once_keeps_what_runs_and_stands_over_the_next_deploy(world: ScaleWorld) -> None:
    files = {**static_site("v1"), "docker-compose.yml": COMPOSE}
    first = world.deploy("production", files)
    [one] = world.web()
    db = {c.id for c in world.orchestrator.observe(APP) if c.service == "db"}
    release = world.scale(web=3)
    assert release != first
    three = world.web()
    assert len(three) == 3 and three[0] == one  # the running replica is kept
    assert {c.id for c in world.orchestrator.observe(APP) if c.service == "db"} == db  # untouched
    assert any("Scaling shop at release" in line and "web 1 -> 3" in line for line in world.said), world.said
    assert world.store.get_environment(APP, "production").replicas == (("web", 3),)

    world.deploy("production", {**files, "index.html": "v2\n"})  # a new version: still 3
    assert len(world.web()) == 3
    world.scale(web=1)
    assert len(world.web()) == 1


def test_what_cannot_run_is_refused_and_nothing_is_kept(world: ScaleWorld) -> None:
    with pytest.raises(DockyardError, match="no live release to scale"):
        world.scaling.set(APP, "production", "tester", {"web": 2})
    world.deploy("production", {**static_site("v1"), "docker-compose.yml": COMPOSE})
    before = [c.id for c in world.orchestrator.observe(APP)]
    for counts, words in (({"nope": 2}, "dockyard scale nope=2: the live release has no service 'nope'"),
                          ({"db": 2}, "dockyard scale db=2: db cannot run 2 containers: it keeps data in a volume"),
                          ({"web": 101}, "dockyard scale web=101: 101 should be a whole number from 0 to 100"),
                          ({}, "no SERVICE=COUNT given")):
        with pytest.raises(DockyardError) as info:
            world.scaling.set(APP, "production", "tester", counts)
        assert info.value.message.startswith(words), info.value.message
    assert world.store.get_environment(APP, "production").replicas == ()
    assert not [j for j in world.queued if j.kind == "scale"]
    assert [c.id for c in world.orchestrator.observe(APP)] == before


def test_a_count_dockyard_yml_sets_otherwise_is_reported_and_scale_stands(world: ScaleWorld) -> None:
    yml = "environments:\n  production:\n    services:\n      web: {replicas: 2}\n"
    files = {**static_site("v1"), "docker-compose.yml": COMPOSE, "dockyard.yml": yml}
    world.deploy("production", files)
    assert len(world.web()) == 2
    world.scale(web=4)
    world.said.clear()
    world.deploy("production", {**files, "index.html": "v2\n"})
    assert len(world.web()) == 4
    warning = ("dockyard.yml: environments/production/services/web/replicas is 2, but dockyard scale set 4 (which "
               "stands): make them agree (dockyard scale shop web=2 --env production)")
    assert any(warning in line for line in world.said), world.said
    environment = world.store.get_environment(APP, "production")
    decl = dockyard_file.load(yml)
    assert declared.setting_conflicts(decl, environment, "main") == [warning]
