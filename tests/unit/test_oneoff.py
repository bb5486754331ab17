"""`dockyard run` and `dockyard exec` on the fakes: what is run where, what is refused (and then
nothing is recorded), and what the job records. The real engine's side is in the e2e tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.domain.errors import DockyardError, NotFound
from dockyard.domain.model import JobStatus, ServiceSpec
from dockyard.fakes import FakeOrchestrator, FakeRepos
from dockyard.services.deploy import Deployer
from dockyard.services.oneoff import OneOffs, interrupted
from tests.unit.on_fakes import deployer_on_fakes, sql_store

APP = "shop"
TREE = {
    "api/Dockerfile": "# reg.example.com/crigen/api\n# VERSION 0.2\nFROM python\nEXPOSE 8000\n",
    "api/Dockerfile-tools": "# reg.example.com/crigen/api-tools\n# VERSION 0.1\nFROM reg.example.com/crigen/api:0.2\n",
    "docker-compose.yml": "services:\n  api:\n    build: api\n    ports: ['8000']\n  worker:\n    build: api\n",
}


@pytest.fixture
def deployer(tmp_path: Path) -> Deployer:
    return deployer_on_fakes(APP, sql_store(tmp_path))


@pytest.fixture
def oneoffs(deployer: Deployer) -> OneOffs:
    assert isinstance(deployer.orchestrator, FakeOrchestrator)
    return OneOffs(deployer.store, deployer.orchestrator, deployer.orchestrator, deployer.registry.address)


def deploy(deployer: Deployer) -> None:
    assert isinstance(deployer.repos, FakeRepos)
    commit = deployer.repos.commit(APP, TREE)
    job = deployer.store.enqueue("deploy", APP, {"commit": commit, "branch": "main"})
    deployer.deploy_job(job, lambda line: None)


def test_a_run_takes_a_service_of_the_live_release_and_records_its_job(deployer: Deployer, oneoffs: OneOffs) -> None:
    deploy(deployer)
    fake = deployer.orchestrator
    assert isinstance(fake, FakeOrchestrator)
    prepared = oneoffs.prepare_run(APP, "production", "ann", ["sh", "-c", "echo hi"], service="worker")
    out: list[tuple[str, bytes]] = []
    result = oneoffs.run(prepared, b"input\n", lambda stream, data: out.append((stream, data)))
    assert result.exit_code == 0 and not result.timed_out
    assert out == [("stdout", b"sh -c echo hi\n"), ("stderr", b"input\n")]
    kind, spec, command = fake.oneoffs[-1]
    assert (kind, command) == ("run", ("sh", "-c", "echo hi"))
    assert isinstance(spec, ServiceSpec) and spec.name == "worker" and spec.command == command
    live = deployer.store.live_release(APP, "production")
    assert live is not None and spec.image == next(s.image for s in live.services if s.name == "worker")
    job = deployer.store.get_job(prepared.job.id)
    assert (job.kind, job.status, job.payload["actor"], job.payload["service"]) == (
        "run", JobStatus.SUCCEEDED, "ann", "worker")
    assert json.loads(job.payload["command"]) == ["sh", "-c", "echo hi"]
    logged = [line for _, line in deployer.store.job_logs(job.id)]
    assert logged == ["-----> run in production: sh -c echo hi", "sh -c echo hi", "input", "=====> exit code 0"]


def test_an_image_the_release_built_runs_though_no_service_runs_it(deployer: Deployer, oneoffs: OneOffs) -> None:
    deploy(deployer)
    fake = deployer.orchestrator
    assert isinstance(fake, FakeOrchestrator)
    fake.exit_codes["restore"] = 3
    prepared = oneoffs.prepare_run(APP, "production", "ann", ["restore", "x.json"], image="api-tools")
    result = oneoffs.run(prepared, None, lambda stream, data: None)
    assert result.exit_code == 3
    _, spec, _ = fake.oneoffs[-1]
    assert isinstance(spec, ServiceSpec) and "api-tools" in spec.image and "@sha256:" in spec.image
    job = deployer.store.get_job(prepared.job.id)
    assert job.status == JobStatus.FAILED and job.error == "exit code 3"
    # with a service too: that image, with the service's configuration
    both = oneoffs.prepare_run(APP, "production", "ann", ["restore"], service="worker", image="api-tools")
    assert both.spec is not None and both.spec.name == "worker" and "api-tools" in both.spec.image


def test_exec_runs_in_the_replica_asked_for(deployer: Deployer, oneoffs: OneOffs) -> None:
    deploy(deployer)
    fake = deployer.orchestrator
    assert isinstance(fake, FakeOrchestrator)
    prepared = oneoffs.prepare_exec(APP, "production", "ann", "api", ["ps"])
    oneoffs.run(prepared, None, lambda stream, data: None)
    kind, task, _ = fake.oneoffs[-1]
    assert kind == "exec" and not isinstance(task, ServiceSpec) and (task.service, task.replica) == ("api", 0)
    assert deployer.store.get_job(prepared.job.id).kind == "exec"


def test_what_cannot_run_is_refused_and_nothing_is_recorded(deployer: Deployer, oneoffs: OneOffs) -> None:
    with pytest.raises(DockyardError, match="no release is live in shop's production"):
        oneoffs.prepare_run(APP, "production", "ann", ["ls"])
    deploy(deployer)
    jobs = len(deployer.store.list_jobs(APP))
    cases = [
        (lambda: oneoffs.prepare_run(APP, "production", "ann", ["ls"], service="nope"), NotFound,
         "has no service 'nope'"),
        (lambda: oneoffs.prepare_run(APP, "production", "ann", ["ls"], image="nope"), NotFound,
         "built no image 'nope'"),
        (lambda: oneoffs.prepare_run(APP, "production", "ann", []), DockyardError, "no command"),
        (lambda: oneoffs.prepare_run(APP, "production", "ann", ["ls"], timeout=0), DockyardError, "out of range"),
        (lambda: oneoffs.prepare_run(APP, "staging", "ann", ["ls"]), NotFound, "staging"),
        (lambda: oneoffs.prepare_exec(APP, "production", "ann", "api", ["ls"], replica=3), NotFound,
         "its running replicas: 0"),
        (lambda: oneoffs.prepare_exec(APP, "production", "ann", "nope", ["ls"]), NotFound,
         "production runs no container of 'nope'"),
    ]
    for call, kind, words in cases:
        with pytest.raises(kind, match=words):
            call()
    assert len(deployer.store.list_jobs(APP)) == jobs


def test_a_run_the_server_stopped_in_the_middle_of_is_not_run_again(deployer: Deployer, oneoffs: OneOffs) -> None:
    deploy(deployer)
    prepared = oneoffs.prepare_run(APP, "production", "ann", ["sleep", "600"])
    with pytest.raises(DockyardError, match="dockyard stopped while this run ran"):
        interrupted(prepared.job, lambda line: None)


RELEASE = ("release:\n  before: [{service: api, command: 'migrate --all', timeout: 1m}]\n"
           "  after: [{service: worker, command: [notify]}]\nenvironments:\n  production: {branch: main}\n")


def test_release_commands_run_before_the_switch_and_after_it(deployer: Deployer) -> None:
    fake = deployer.orchestrator
    assert isinstance(fake, FakeOrchestrator)
    fake.exit_codes["notify"] = 1
    assert isinstance(deployer.repos, FakeRepos)
    commit = deployer.repos.commit(APP, {**TREE, "dockyard.yml": RELEASE})
    said: list[str] = []
    deployer.deploy_job(deployer.store.enqueue("deploy", APP, {"commit": commit, "branch": "main"}), said.append)
    assert [(k, c) for k, _, c in fake.oneoffs] == [("run", ("migrate", "--all")), ("run", ("notify",))]
    before = said.index("-----> Release command (before the switch) in api: migrate --all")
    assert said[before + 1] == "       migrate --all"  # its output
    assert before < next(i for i, line in enumerate(said) if "is live" in line)
    assert any("the release command 'notify' in worker failed (exit code 1); the release stays live" in line
               for line in said)
    assert deployer.store.live_release(APP, "production") is not None


def test_a_failing_command_before_the_switch_aborts_the_release(deployer: Deployer) -> None:
    fake = deployer.orchestrator
    assert isinstance(fake, FakeOrchestrator)
    deploy(deployer)
    live = deployer.store.live_release(APP, "production")
    fake.exit_codes["migrate"] = 2
    assert isinstance(deployer.repos, FakeRepos)
    commit = deployer.repos.commit(APP, {**TREE, "api/v2.txt": "2\n", "dockyard.yml": RELEASE})
    with pytest.raises(DockyardError, match="the release command 'migrate --all' in api failed \\(exit code 2\\)"):
        deployer.deploy_job(deployer.store.enqueue("deploy", APP, {"commit": commit, "branch": "main"}),
                            lambda line: None)
    assert deployer.store.live_release(APP, "production") == live  # the old one keeps serving
    assert [c for k, _, c in fake.oneoffs] == [("migrate", "--all")]  # nothing after it ran
