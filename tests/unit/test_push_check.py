"""A push checked before git stores it (services/push_check.py, what the pre-receive hook asks),
on the in-memory fakes and a real SQLite store: refused pushes queue nothing and are recorded;
accepted ones queue a deploy per environment their branch deploys to, waiting for the push."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.domain.model import Environment, JobStatus
from dockyard.services.jobs import Jobs
from dockyard.services.push_check import PushChecks, RefUpdate
from tests.support import static_site
from tests.unit.test_environments import APP, World

ZERO = "0" * 40


@pytest.fixture
def checks(tmp_path: Path) -> tuple[World, PushChecks]:
    world = World(tmp_path)
    return world, PushChecks(world.store, world.repos, world.deployer, world.envs, Jobs(world.store))


def pushed(world: World, files: dict[str, str], branch: str = "main") -> str:
    return world.repos.commit(APP, files, branch=branch)


def refused_jobs(world: World) -> list[str]:
    return [j.error or "" for j in world.store.list_jobs(APP, limit=20) if j.kind == "push"]


def test_an_accepted_push_queues_its_deploys_waiting_for_the_push(checks: tuple[World, PushChecks]) -> None:
    world, pushes = checks
    world.envs.create(APP, "recette", branch="main")
    commit = pushed(world, static_site("v1"))
    verdict = pushes.check(APP, [RefUpdate(ZERO, commit, "refs/heads/main")], "", "alice")
    assert verdict.accepted and verdict.said == ()
    assert [(d.environment, d.commit, d.target) for d in verdict.deploys] == [
        ("production", commit, ""), ("recette", commit, "")]
    jobs = {j.id: j for j in world.queued}
    for deploy in verdict.deploys:
        assert deploy.job is not None
        job = jobs[deploy.job]
        assert job.environment == deploy.environment
        assert job.payload == {"commit": commit, "branch": "main", "actor": "alice", "await_push": "true"}


def test_a_branch_that_deploys_nowhere_and_a_tag_queue_nothing(checks: tuple[World, PushChecks]) -> None:
    world, pushes = checks
    commit = pushed(world, {"README": "no Dockerfile here\n"}, branch="feature")
    verdict = pushes.check(APP, [RefUpdate(ZERO, commit, "refs/heads/feature"),
                                 RefUpdate(ZERO, commit, "refs/tags/v1.0")], "", "alice")
    assert verdict.accepted and verdict.deploys == () and world.queued == []


@pytest.mark.parametrize(("ref", "message"), [
    ("refs/notes/x", "refs/notes/x: only branches and tags can be pushed"),
    ("refs/heads/a..b", "invalid branch name 'a..b'"),
])
def test_refs_dockyard_or_git_refuse(checks: tuple[World, PushChecks], ref: str, message: str) -> None:
    world, pushes = checks
    commit = pushed(world, static_site("v1"))
    verdict = pushes.check(APP, [RefUpdate(ZERO, commit, ref)], "", "alice")
    assert verdict.refusal is not None and message in verdict.refusal.message
    assert world.queued == [] and len(refused_jobs(world)) == 1


def test_a_deploying_branch_cannot_be_deleted(checks: tuple[World, PushChecks]) -> None:
    world, pushes = checks
    commit = pushed(world, static_site("v1"))
    verdict = pushes.check(APP, [RefUpdate(commit, ZERO, "refs/heads/main")], "", "alice")
    assert verdict.refusal is not None
    assert verdict.refusal.message == "branch 'main' deploys to production: it cannot be deleted"
    assert "dockyard envs set-branch" in verdict.refusal.hint


def test_files_that_cannot_deploy_are_refused_and_recorded(checks: tuple[World, PushChecks]) -> None:
    world, pushes = checks
    good = pushed(world, static_site("v1"), branch="other")
    bad = pushed(world, {**static_site("v2"), "docker-compose.yml": "services:\n  web: {privileged: true, build: .}\n"})
    verdict = pushes.check(APP, [RefUpdate(ZERO, good, "refs/heads/other"), RefUpdate(ZERO, bad, "refs/heads/main")],
                           "", "alice")
    assert verdict.refusal is not None and "privileged" in verdict.refusal.message
    assert world.queued == []  # nothing of the push is deployed, not even its other ref
    [error] = refused_jobs(world)
    assert "privileged" in error
    assert [j.status for j in world.store.list_jobs(APP, limit=5)] == [JobStatus.FAILED]


def test_environments_dockyard_yml_declares_are_added_with_their_first_deploy(checks: tuple[World, PushChecks]) -> None:
    world, pushes = checks
    declared = "environments:\n  recette:\n    branch: develop\n"
    commit = pushed(world, {**static_site("v1"), "dockyard.yml": declared}, branch="develop")
    verdict = pushes.check(APP, [RefUpdate(ZERO, commit, "refs/heads/develop")], "", "alice")
    assert verdict.accepted, verdict.refusal
    [deploy] = verdict.deploys
    assert (deploy.environment, deploy.target) == ("recette", "local") and deploy.job is not None
    assert verdict.said == ("-----> recette: added, as dockyard.yml declares (target local, branch develop)",)
    assert [e.name for e in world.store.environments(APP)] == ["production", "recette"]


def test_a_declared_check_the_service_cannot_run_is_refused(checks: tuple[World, PushChecks]) -> None:
    world, pushes = checks
    world.store.add_environment(Environment(APP, "recette", branch="develop"))
    files = {**static_site("v1"), "docker-compose.yml": "services:\n  worker: {build: .}\n",
             "dockyard.yml": "environments:\n  recette:\n    branch: develop\n    services:\n"
                             "      worker: {health: {path: /up}}\n"}
    commit = pushed(world, files, branch="develop")
    verdict = pushes.check(APP, [RefUpdate(ZERO, commit, "refs/heads/develop")], "", "alice")
    assert verdict.refusal is not None and "worker" in verdict.refusal.message
    assert world.queued == []
