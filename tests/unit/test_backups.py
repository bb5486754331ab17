"""Volume backups on the fakes: archives with checksums, listed; a restore checks the checksum and
stops the services on the volume meanwhile; a copy between environments; what is refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.domain.errors import Conflict, DockyardError, NotFound
from dockyard.domain.model import Environment, JobStatus
from dockyard.fakes import FakeOrchestrator, FakeRepos, FakeVolumeArchives
from dockyard.services import stages
from dockyard.services.backups import Backups
from dockyard.services.deploy import Deployer
from tests.unit.on_fakes import deployer_on_fakes, sql_store

APP = "shop"
TREE = {
    "Dockerfile": "FROM python\nEXPOSE 8000\n",
    "docker-compose.yml": "services:\n  web:\n    build: .\n    ports: ['8000']\n    volumes: [data:/data]\n"
                          "  other:\n    build: .\nvolumes:\n  data:\n",
}


@pytest.fixture
def deployer(tmp_path: Path) -> Deployer:
    deployer = deployer_on_fakes(APP, sql_store(tmp_path))
    store, repos = deployer.store, deployer.repos
    assert isinstance(repos, FakeRepos)
    for env in ("production", "recette"):
        if env != "production":
            store.add_environment(Environment(APP, env))
        commit = repos.commit(APP, TREE)
        deployer.deploy_job(store.enqueue("deploy", APP, {"commit": commit, "branch": "main"}, env), lambda line: None)
    return deployer


@pytest.fixture
def archives() -> FakeVolumeArchives:
    return FakeVolumeArchives()


@pytest.fixture
def backups(deployer: Deployer, archives: FakeVolumeArchives, tmp_path: Path) -> Backups:
    return Backups(deployer.store, deployer.orchestrator, archives, tmp_path / "backups", deployer.lock)


def test_a_backup_is_an_archive_with_its_checksum_and_says_what_ran(backups: Backups, archives: FakeVolumeArchives,
                                                                   tmp_path: Path) -> None:
    archives.files[(APP, "production", "data")] = b"tar of the data"
    taken = backups.backup(APP, "production", "data", "ann")
    path = Path(taken.path)
    assert path.parent == tmp_path / "backups" / APP / "production" / "data" and path.name.endswith(".tar.gz")
    assert taken.running == ("web",) and taken.by == "ann" and taken.bytes == path.stat().st_size
    assert json.loads((path.parent / f"{taken.id}.json").read_text())["sha256"] == taken.sha256
    assert backups.archived(APP) == [taken]
    assert backups.archived(APP, "recette") == [] and backups.archived(APP, volume="data") == [taken]
    job = backups.store.list_jobs(APP, environment="production")[0]
    assert (job.kind, job.status) == ("backup", JobStatus.SUCCEEDED)


def test_a_restore_stops_the_services_on_the_volume_and_starts_them_again(
    backups: Backups, archives: FakeVolumeArchives, deployer: Deployer
) -> None:
    fake = deployer.orchestrator
    assert isinstance(fake, FakeOrchestrator)
    archives.files[(APP, "production", "data")] = b"good data"
    taken = backups.backup(APP, "production", "data", "ann")
    archives.files[(APP, "production", "data")] = b"destroyed"
    fake.events.clear()
    backups.restore(APP, "production", "data", taken.id, "ann")
    assert archives.files[(APP, "production", "data")] == b"good data"
    halted = [e for e in fake.events if e.startswith(("halt", "resume"))]
    assert halted and all("web" in e for e in halted) and halted[0].startswith("halt") and halted[-1].startswith("resume")
    running = [c for c in fake.observe(APP) if c.environment == "production" and c.state == "running"]
    assert {c.service for c in running} == {"web", "other"}


def test_a_copy_takes_one_environment_s_volume_into_another(backups: Backups, archives: FakeVolumeArchives) -> None:
    archives.files[(APP, "production", "data")] = b"production's"
    archives.files[(APP, "recette", "data")] = b"recette's"
    copied = backups.copy(APP, "production", "recette", "data", "ann")
    assert copied.environment == "production"
    assert archives.files[(APP, "recette", "data")] == b"production's"
    assert archives.files[(APP, "production", "data")] == b"production's"
    assert [j.kind for j in backups.store.list_jobs(APP, environment="recette")][:1] == ["copy"]


def test_what_cannot_be_restored_is_refused_and_nothing_changes(
    backups: Backups, archives: FakeVolumeArchives, deployer: Deployer
) -> None:
    archives.files[(APP, "production", "data")] = b"good"
    taken = backups.backup(APP, "production", "data", "ann")
    archives.files[(APP, "production", "data")] = b"current"
    Path(taken.path).write_bytes(b"tampered")
    with pytest.raises(DockyardError, match="does not match its checksum"):
        backups.restore(APP, "production", "data", taken.id, "ann")
    good = backups.backup(APP, "production", "data", "ann")
    lock = deployer.lock(APP, "production")
    with lock, pytest.raises(Conflict, match="a release is running"):
        backups.restore(APP, "production", "data", good.id, "ann")
    for call, kind, words in (
        (lambda: backups.restore(APP, "production", "nope", good.id, "ann"), DockyardError, "not 'nope'"),
        (lambda: backups.restore(APP, "production", "data", "nope", "ann"), NotFound, "no backup 'nope'"),
        (lambda: backups.backup(APP, "production", "nope", "ann"), NotFound, "its volumes: data"),
        (lambda: backups.copy(APP, "production", "production", "data", "ann"), DockyardError, "two environments"),
        (lambda: backups.backup(APP, "staging", "data", "ann"), NotFound, "staging"),
    ):
        with pytest.raises(kind, match=words):
            call()
    assert archives.files[(APP, "production", "data")] == b"current"


def test_scheduled_backups_run_when_due_with_their_hooks_and_keep_the_newest(
    deployer: Deployer, archives: FakeVolumeArchives, tmp_path: Path
) -> None:
    fake = deployer.orchestrator
    assert isinstance(fake, FakeOrchestrator) and isinstance(deployer.repos, FakeRepos)
    yml = ("environments:\n  production:\n    branch: main\n    backups:\n      data:\n        every: 1h\n"
           "        keep: 2\n        before: {service: other, command: freeze}\n"
           "        after: {service: other, command: thaw}\n")
    commit = deployer.repos.commit(APP, {**TREE, "dockyard.yml": yml})
    deployer.deploy_job(deployer.store.enqueue("deploy", APP, {"commit": commit, "branch": "main"}), lambda line: None)
    now = [datetime(2026, 11, 28, 12, 0, tzinfo=UTC)]
    backups = Backups(deployer.store, fake, archives, tmp_path / "backups", deployer.lock,
                      declared=lambda app, c: stages.declared(deployer.repos, app, c), clock=lambda: now[0])
    archives.files[(APP, "production", "data")] = b"v1"
    first = backups.tick()
    assert [(a.environment, a.volume, a.scheduled, a.by) for a in first] == [("production", "data", True, "schedule")]
    assert [c for _, _, c in fake.oneoffs] == [("freeze",), ("thaw",)]
    assert backups.tick() == []  # not due yet
    taken = []
    for hours in (1, 2, 3):
        now[0] = datetime(2026, 11, 28, 12 + hours, 0, 1, tzinfo=UTC)
        # the archives' own times are the wall clock's: make each one look an hour older than the last
        for archive in backups.archived(APP, "production", "data"):
            meta = Path(archive.path).with_name(f"{archive.id}.json")
            data = json.loads(meta.read_text())
            data["created_at"] = (now[0] - timedelta(hours=1, seconds=1)).isoformat()
            meta.write_text(json.dumps(data))
        taken += backups.tick()
    assert len(taken) == 3
    kept = backups.archived(APP, "production", "data")
    assert len(kept) == 2 and all(a.scheduled for a in kept)  # keep: 2
    manual = backups.backup(APP, "production", "data", "ann")
    assert not manual.scheduled and manual in backups.archived(APP)

    # a command before the backup that fails: no backup, and the command after still runs
    fake.exit_codes["freeze"] = 1
    now[0] += timedelta(hours=2)
    before = len(backups.archived(APP))
    assert backups.tick() == []
    assert len(backups.archived(APP)) == before and [c for _, _, c in fake.oneoffs][-2:] == [("freeze",), ("thaw",)]
    job = deployer.store.list_jobs(APP, environment="production")[0]
    assert job.kind == "backup" and job.status == JobStatus.FAILED and "no backup was taken" in (job.error or "")


def test_one_backup_or_restore_of_a_volume_at_a_time_and_names_are_checked(backups: Backups,
                                                                           archives: FakeVolumeArchives) -> None:
    archives.files[(APP, "production", "data")] = b"x"
    with backups._one_at_a_time(APP, "production", "data"), \
            pytest.raises(Conflict, match="a backup or restore of volume 'data' of shop \\(production\\) is under way"):
        backups.backup(APP, "production", "data", "ann")
    assert backups.backup(APP, "production", "data", "ann").volume == "data"  # free again
    for bad in ("../../other/production/data", "*", "a/b"):
        with pytest.raises(DockyardError, match="is not a volume name"):
            backups.archived(APP, volume=bad)
