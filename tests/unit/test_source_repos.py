"""An app made of several repos, on the fakes: a push to a source repo builds its images, rebuilds
the repos that build FROM them (after their bases), and the deploy repo's stack runs each image
pinned to its newest build (services/sources.py, services/deploy.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.domain import builds
from dockyard.domain.model import BuiltImage, ServiceSpec, SourceRepo
from dockyard.fakes import FakeBuilder, FakeRepos, FakeStore
from dockyard.services.deploy import Deployer
from tests.unit.on_fakes import deployer_on_fakes, sql_store

APP = "shop"
NODEJS = "dockyard.test/x/nodejs"
API = "dockyard.test/x/api"
BASE_FILES = {"Dockerfile": f"# {NODEJS}\n#\n# VERSION 0.1\nFROM busybox\nRUN true\n"}
API_FILES = {
    "Dockerfile": f"# {API}\n#\n# VERSION 0.2\nFROM {NODEJS}:0.1\nCOPY main.js /main.js\nEXPOSE 8000\n",
    "main.js": "console.log('hi')\n",
}
STACK = {"docker-compose.yml": f"services:\n  api:\n    image: {API}:0.2\n    ports: [\"8000\"]\n"}


@pytest.fixture(params=["sql", "fake"])
def deployer(request: pytest.FixtureRequest, tmp_path: Path) -> Deployer:
    deployer = deployer_on_fakes(APP, sql_store(tmp_path) if request.param == "sql" else FakeStore())
    store, repos = deployer.store, deployer.repos
    for name in ("base", "api"):
        store.add_repo(SourceRepo(APP, name, "source"))
        repos.create(f"{APP}/{name}")
    return deployer


def fake_repos(deployer: Deployer) -> FakeRepos:
    assert isinstance(deployer.repos, FakeRepos)
    return deployer.repos


def run(deployer: Deployer, payload: dict[str, str]) -> list[str]:
    said: list[str] = []
    job = deployer.store.enqueue("deploy", APP, payload)
    deployer.deploy_job(job, said.append)
    return said


def live_services(deployer: Deployer) -> dict[str, ServiceSpec]:
    live = deployer.store.live_release(APP, "production")
    assert live is not None
    return {s.name: s for s in live.services}


def by_repo(deployer: Deployer) -> dict[str, BuiltImage]:
    """The newest build of each repo."""
    out: dict[str, BuiltImage] = {}
    for image in deployer.store.list_images(APP):
        out.setdefault(image.repo, image)
    return out


def test_a_push_to_a_base_rebuilds_its_dependent_and_the_stack_runs_the_new_build(deployer: Deployer) -> None:
    repos = fake_repos(deployer)
    repos.commit(APP, STACK)
    repos.commit(f"{APP}/api", API_FILES)
    base = repos.commit(f"{APP}/base", BASE_FILES)

    said = run(deployer, {"commit": base, "branch": "main", "repo": "base"})

    assert any("api builds FROM an image just built" in line for line in said), said
    images = deployer.store.list_images(APP)  # newest first
    assert [(i.repo, i.name, i.version, i.branch) for i in images] == [
        ("api", API, "0.2", "main"), ("base", NODEJS, "0.1", "main")]  # the api build recorded after the base's
    api, nodejs = images
    assert (api.repository, api.source_version, nodejs.repository) == (f"{APP}/api", "0.2", f"{APP}/nodejs")
    assert nodejs.commit == base and api.commit == repos.head(f"{APP}/api", "main")

    builder = deployer.builder
    assert isinstance(builder, FakeBuilder)
    registry = deployer.registry.address
    # the api's FROM was pinned to the base just built
    text = builder.dockerfiles[api.image_id]
    assert text is not None and text.splitlines()[3] in (
        f"FROM {nodejs.image_id}", f"FROM {builds.pinned(nodejs, registry)}")

    pinned = builds.pinned(api, registry)
    assert live_services(deployer)["api"].image == pinned
    [running] = [c for c in deployer.orchestrator.observe(APP) if c.service == "api"]
    # by the build's local id where the builder knows it by its id (Docker does), else as the
    # target resolves the pinned reference (FakeBuilder.image_id knows tags only)
    resolved = deployer.orchestrator.resolve_image(pinned)
    assert resolved is not None and running.image in (api.image_id, resolved.image_id)
    assert any(f"api: {API}:0.2 is {API}:0.2 built from api" in line for line in said), said


def test_a_push_to_the_dependent_alone_builds_only_it_from_the_base_built_before(deployer: Deployer) -> None:
    repos = fake_repos(deployer)
    repos.commit(APP, STACK)
    repos.commit(f"{APP}/api", API_FILES)
    run(deployer, {"commit": repos.commit(f"{APP}/base", BASE_FILES), "branch": "main", "repo": "base"})
    before = by_repo(deployer)
    assert before["api"].version == "0.2"
    changed = repos.commit(f"{APP}/api", {**API_FILES, "main.js": "console.log('changed')\n"})

    said = run(deployer, {"commit": changed, "branch": "main", "repo": "api"})

    assert not any("builds FROM an image just built" in line for line in said)
    after = by_repo(deployer)
    assert after["base"] == before["base"]  # the base is not rebuilt
    api = after["api"]
    assert api.commit == changed and api.version == "0.2+g" + changed[:8] and api.source_version == "0.2"
    assert any(f"FROM {NODEJS}:0.1: {NODEJS}:0.1 built from base" in line for line in said), said
    assert live_services(deployer)["api"].image == builds.pinned(api, deployer.registry.address)


def test_dependents_are_rebuilt_after_their_bases(deployer: Deployer) -> None:
    """web builds FROM api, which builds FROM the base: a push to the base rebuilds api, then web,
    whatever order the repos were added in."""
    deployer.store.remove_repo(APP, "api")
    deployer.store.add_repo(SourceRepo(APP, "web", "source"))  # before api, which it builds FROM
    deployer.store.add_repo(SourceRepo(APP, "api", "source"))
    repos = fake_repos(deployer)
    repos.create(f"{APP}/web")
    repos.commit(APP, STACK)
    repos.commit(f"{APP}/api", API_FILES)
    repos.commit(f"{APP}/web", {"Dockerfile": f"# dockyard.test/x/web\n# VERSION 1.0\nFROM {API}:0.2\n"})
    base = repos.commit(f"{APP}/base", BASE_FILES)

    said = run(deployer, {"commit": base, "branch": "main", "repo": "base"})

    rebuilt = [line for line in said if "builds FROM an image just built" in line]
    assert [line.split()[1] for line in rebuilt] == ["api", "web"], said
    assert [i.repo for i in deployer.store.list_images(APP)] == ["web", "api", "base"]


def test_a_repo_without_the_branch_is_not_rebuilt(deployer: Deployer) -> None:
    repos = fake_repos(deployer)
    repos.commit(APP, STACK, branch="feature")
    repos.commit(f"{APP}/api", API_FILES)  # on main only
    base = repos.commit(f"{APP}/base", BASE_FILES, branch="feature")

    said = run(deployer, {"commit": base, "branch": "feature", "repo": "base"})

    assert not any("builds FROM an image just built" in line for line in said)
    assert [(i.repo, i.branch) for i in deployer.store.list_images(APP)] == [("base", "feature")]


def test_resolve_pins_the_stack_to_the_newest_build_of_the_branch(deployer: Deployer) -> None:
    """SourceBuilds.resolve alone, on recorded builds."""
    store, registry = deployer.store, deployer.registry.address

    def record(version: str, branch: str, serial: int, source_version: str = "0.2") -> BuiltImage:
        image = BuiltImage(app=APP, repository=f"{APP}/api", version=version, tag=version.replace("+", "_"),
                           digest=f"sha256:{serial:064x}", image_id=f"sha256:{serial + 100:064x}",
                           commit=f"{serial:040x}", size=1, dockerfile="Dockerfile", name=API,
                           source_version=source_version, repo="api", branch=branch)
        store.add_image(image)
        return image

    main = record("0.2", "main", 1)
    record("0.2+gaaaaaaaa", "feature", 2)
    feature_latest = record("0.3", "feature", 3, source_version="0.3")
    services = (ServiceSpec(name="api", image=f"{API}:0.2", port=8000),
                ServiceSpec(name="latest", image=API),
                ServiceSpec(name="redis", image="redis:7"),
                ServiceSpec(name="ours", image=f"{registry}/{APP}/api:0.2"))
    said: list[str] = []
    app = store.get_app(APP)
    resolved = {s.name: s for s in deployer.sources.resolve(app, services, "main", said.append)}
    assert resolved["api"].image == builds.pinned(main, registry)  # the branch's, over a newer one of another
    assert resolved["api"].port == 8000
    assert resolved["latest"].image == builds.pinned(main, registry)  # the branch's newest of any version
    assert resolved["redis"] == services[2]  # not one of the app's images
    assert resolved["ours"].image == builds.pinned(main, registry)  # dockyard's registry: by repository and tag
    on_feature = {s.name: s for s in deployer.sources.resolve(app, services, "feature", said.append)}
    assert on_feature["latest"].image == builds.pinned(feature_latest, registry)
    assert on_feature["api"].image.endswith(f"@sha256:{2:064x}")
    assert any(line.strip().startswith(f"api: {API}:0.2 is {API}:0.2 built from api") for line in said), said
