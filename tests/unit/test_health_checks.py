"""dockyard.yml's HTTP health checks (services/NAME/health): applied per environment to the
services a commit runs, refused where there is nothing to ask, and gating a release on the fakes
(a failing check releases nothing and the old version keeps serving)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.domain import dockyard_file
from dockyard.domain.declared import with_health
from dockyard.domain.errors import DeployFailed, InvalidSource
from dockyard.domain.model import HttpCheck, ServiceSpec
from tests.support import static_site
from tests.unit.test_environments import World

WEB = ServiceSpec("web", "reg/shop@sha256:" + "1" * 64, 8000)
WORKER = ServiceSpec("worker", "reg/shop@sha256:" + "2" * 64)


def declared(services: str, environment: str = "production") -> dockyard_file.DockyardFile:
    found = dockyard_file.load(f"environments:\n  {environment}:\n    services:\n{services}")
    assert found is not None
    return found


@pytest.mark.parametrize(("status", "passing", "failing"), [
    (0, (200, 204, 301, 302, 399), (199, 400, 404, 500, 503)),
    (204, (204,), (200, 301, 500)),
])
def test_a_check_passes_on_2xx_or_3xx_unless_a_status_is_given(status: int, passing: tuple[int, ...],
                                                               failing: tuple[int, ...]) -> None:
    check = HttpCheck("/up", status)
    assert all(check.passes(s) for s in passing)
    assert not any(check.passes(s) for s in failing)


def test_the_environment_s_check_is_given_to_its_service_only() -> None:
    decl = declared("      web:\n        health: {path: /up, status: 204, interval: 2s, timeout: 500ms}\n")
    web, worker = with_health((WEB, WORKER), decl, "production")
    assert web.health == HttpCheck("/up", 204, 2.0, 0.5)
    assert worker == WORKER and worker.health is None
    assert with_health((WEB, WORKER), decl, "recette") == (WEB, WORKER)  # another environment: as written
    assert with_health((WEB, WORKER), None, "production") == (WEB, WORKER)


def test_defaults_are_any_2xx_or_3xx_every_10s_within_5s() -> None:
    [web] = with_health((WEB,), declared("      web:\n        health: {path: /health}\n"), "production")
    assert web.health == HttpCheck("/health", 0, 10.0, 5.0)


def test_a_check_never_changes_the_container() -> None:
    [web] = with_health((WEB,), declared("      web:\n        health: {path: /health}\n"), "production")
    assert web.spec_hash == WEB.spec_hash


@pytest.mark.parametrize(("services", "words"), [
    ("      nope:\n        health: {path: /up}\n",
     "dockyard.yml: environments/production/services/nope/health: the stack has no service 'nope'"),
    ("      worker:\n        health: {path: /up}\n",
     "dockyard.yml: environments/production/services/worker/health: worker has no port to ask"),
])
def test_a_check_where_there_is_nothing_to_ask_is_refused(services: str, words: str) -> None:
    with pytest.raises(InvalidSource) as info:
        with_health((WEB, WORKER), declared(services), "production")
    assert info.value.message.startswith(words), info.value.message


# -- on the fakes: the Deployer gates the release on the check ------------------------------------------
@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


CHECKED = "environments:\n  production:\n    services:\n      web:\n        health: {path: /ready}\n"


def test_a_release_waits_for_the_check_and_says_so(world: World) -> None:
    world.deploy("production", {**static_site("v1"), "dockyard.yml": CHECKED})
    assert any(e.startswith("check web GET /ready") for e in world.events), world.events
    assert any("waiting for web to pass GET /ready" in line for line in world.said), world.said
    assert not any("not honoured" in line for line in world.said)
    assert any(line.strip().startswith("web: serving through the proxy") and line.endswith("s after it was ready")
               for line in world.said), world.said  # the reaction time, measured at each release


def test_a_failing_check_releases_nothing_and_the_old_version_keeps_serving(world: World) -> None:
    world.deploy("production", static_site("v1"))
    before = (world.orchestrator.observe("shop"), world.proxy.routes())
    world.orchestrator.check_answers["web"] = 500
    with pytest.raises(DeployFailed) as info:
        world.deploy("production", {**static_site("v2"), "dockyard.yml": CHECKED})
    assert "did not pass its health check (GET /ready, expecting 2xx or 3xx) within 5s: it answered 500" in (
        info.value.message)
    assert (world.orchestrator.observe("shop"), world.proxy.routes()) == before
