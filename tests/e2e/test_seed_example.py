"""The seed's application (examples/seed: the five repositories of the seed's write-up as one),
pushed to a real dockyard with the real git client: its compose file as the seed wrote it (only
the image names changed), a Redis master with two replicas standing in for MongoDB under the
seed's host names (mongodb, slave1, slave2), two apis, two vitrines, two supervisions; the tools
image runs with `dockyard run` (no container sleeps for it).

Checked: every service runs; the apis see docker-compose.env's MONGODB_* values; an item written
through api1 (to the master) is read back through api2 (from a replica); the replicas follow the
master; the tools image dumps the database and restores the sample export; exec reaches an api; a
backup of the master's volume brings its data back; the master's data survives a release that
changes its image.

The base images start FROM dockyard/debian:bookworm-local, which
examples/seed/base-images/build-rootfs.sh builds with debootstrap (nothing is pulled from Docker
Hub); the module builds it first when it is missing (about 30 s). Builds run apt-get against
Debian's mirror, so this module's server gets a longer build deadline than the shared one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.support import Server, make_repo, remove_images, sweep, wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed"
ROOTFS_SCRIPT = EXAMPLE / "base-images" / "build-rootfs.sh"
ROOT_IMAGE = "dockyard/debian:bookworm-local"
APP = "seed"
SERVICES = {"vitrine1", "vitrine2", "api1", "api2", "supervision1", "supervision2", "mongodb-master",
            "mongodb-slave1", "mongodb-slave2"}  # the tools image runs with dockyard run, as no service
# The images the Dockerfile headers declare, as dockyard's registry names them (APP/NAME: VERSION).
IMAGES = {"seed/seed-python": "0.1", "seed/seed-redis-base": "0.1", "seed/seed-redis-replicaset": "0.1",
          "seed/seed-api": "0.2", "seed/seed-api-tools": "0.1", "seed/seed-vitrine": "0.1",
          "seed/seed-supervision": "0.1"}
REPLICAS = {"slave1:27017", "slave2:27017"}
REPLICATION_DEADLINE = 45  # seconds: replication is asynchronous, and replicas (re)connect on their own


@dataclass
class Deployed:
    server: Server
    repo: Path
    push: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[Server]:
    """A server of this module's own: its builds run apt-get, longer than the shared server's
    15 s build deadline allows."""
    built = subprocess.run(["bash", str(ROOTFS_SCRIPT)], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, f"{ROOTFS_SCRIPT} failed:\n{built.stdout}\n{built.stderr}"
    engine.images.get(ROOT_IMAGE)
    srv = Server(tmp_path_factory.mktemp("seed-home"), DOCKYARD_BUILD_TIMEOUT="900", DOCKYARD_READY_TIMEOUT="60")
    srv.start()
    try:
        yield srv
    finally:
        for app in srv.api("GET", "/api/v1/apps").json() if srv.proc and srv.proc.poll() is None else []:
            srv.api("DELETE", f"/api/v1/apps/{app['name']}")
        srv.stop()
        sweep(engine, srv.installation)
        remove_images(engine, f"127.0.0.1:{srv.registry_port}/")


@pytest.fixture(scope="module")
def seed(seed_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """examples/seed as a repository of its own, pushed once for the module."""
    seed_server.cli("apps", "create", APP)
    repo = tmp_path_factory.mktemp("seed-src") / "seed"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", ".mypy_cache", ".ruff_cache"))
    make_repo(repo, {})
    return Deployed(seed_server, repo, seed_server.push(repo, APP))


# -- talking to the services through the proxy --------------------------------------------------
def host(service: str) -> str:
    """Where a web service answers: the first (vitrine1) at APP.localhost, every one at SERVICE.APP.localhost."""
    return f"{service}.{APP}.localhost"


def get_json(srv: Server, service: str, path: str) -> Any:
    """The service's JSON answer, or the reason there is none (a string starting with '<')."""
    body = srv.body(host(service), path)
    if body.startswith("<"):
        return body
    try:
        return json.loads(body)
    except ValueError:
        return f"<not JSON: {body[:200]!r}>"


def post_item(srv: Server, service: str, name: str) -> httpx.Response:
    return httpx.post(f"http://127.0.0.1:{srv.proxy_port}/items", headers={"Host": host(service)},
                      json={"name": name}, timeout=10)


def names_read_through(srv: Server, service: str) -> tuple[set[str], str | None, Any]:
    """The item names an api reads (from a replica), which replica it read from, and its answer."""
    answer = get_json(srv, service, "/items")
    if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
        return set(), None, answer
    return {str(i.get("name")) for i in answer["items"] if isinstance(i, dict)}, answer.get("read_from"), answer


def read_back(srv: Server, service: str, name: str) -> tuple[set[str], str | None, Any]:
    """Poll ``service``'s GET /items until ``name`` is among the items (replication is asynchronous)."""
    last: list[Any] = [None]

    def seen() -> tuple[set[str], str | None, Any] | None:
        found = names_read_through(srv, service)
        last[0] = found[2]
        return found if name in found[0] else None

    try:
        return wait_until(seen, REPLICATION_DEADLINE, f"{name!r} read back through {service}", interval=0.5)
    except AssertionError:
        raise AssertionError(f"{name!r} was never read back through {service}; its last answer to "
                             f"GET /items: {last[0]!r}") from None


def containers(srv: Server) -> dict[str, dict[str, Any]]:
    """The running container of each service."""
    status = srv.api("GET", f"/api/v1/apps/{APP}").json()
    return {c["service"]: c for c in status["containers"] if c["state"] == "running"}


TOOLS = ("run", APP, "--service", "api1", "--image", "seed-api-tools", "--")  # the seed's tools container, once


def dumped_names(srv: Server) -> set[str]:
    """The item names in the master, as the tools image's dump.sh reads them."""
    dumped = srv.cli(*TOOLS, "dump.sh", "-", check=False)
    assert dumped.returncode == 0, dumped.stderr
    dump = json.loads(dumped.stdout)
    assert dump["db"] == "crigen", dump
    items = dump["keys"].get("items", {}).get("value", [])
    return {str(json.loads(item).get("name")) for item in items}


def replication(srv: Server) -> Any:
    return get_json(srv, "supervision1", "/replication")


def replicas_follow(state: Any) -> bool:
    if not isinstance(state, dict) or not isinstance(state.get("master"), dict):
        return False
    master = state["master"]
    online = {f"{s.get('ip')}:{s.get('port')}" for s in master.get("slaves", []) if s.get("state") == "online"}
    linked = {r.get("host") for r in state.get("replicas", []) if r.get("master_link_status") == "up"}
    return master.get("connected_slaves") == 2 and online == REPLICAS and linked == REPLICAS


# -- the tests ------------------------------------------------------------------------------------
def test_the_seed_is_pushed_and_every_service_runs(seed: Deployed) -> None:
    srv = seed.server
    assert seed.push.returncode == 0, seed.push.stderr
    assert "Release 1 is live" in seed.push.stderr, seed.push.stderr
    running = containers(srv)
    assert set(running) == SERVICES, running
    images = {(i["repository"], i["version"]) for i in srv.api("GET", f"/api/v1/apps/{APP}/images").json()}
    assert set(IMAGES.items()) <= images, images
    assert "Vitrine" in srv.body(f"{APP}.localhost")  # vitrine1, the first web service
    for service in ("vitrine1", "vitrine2", "supervision1", "supervision2"):
        assert srv.body(host(service), "/health").startswith("ok "), service
    for service in ("api1", "api2"):
        health = get_json(srv, service, "/health")
        assert isinstance(health, dict) and health["status"] == "ok", (service, health)


def test_the_apis_see_the_seed_env_file(seed: Deployed) -> None:
    expected = {
        "MONGODB_HOSTS_PORTS": "mongodb:27017,slave1:27017,slave2:27017",
        "MONGODB_USER": "obfuscated3",
        "MONGODB_PASSWORD": "********",  # masked by the api
        "MONGODB_DB": "crigen",
        "MONGODB_DEBUG": "true",
    }
    for service in ("api1", "api2"):
        assert get_json(seed.server, service, "/env") == expected, service


def test_the_replicas_follow_the_master(seed: Deployed) -> None:
    last: list[Any] = [None]

    def following() -> bool:
        last[0] = replication(seed.server)
        return replicas_follow(last[0])

    try:
        wait_until(following, REPLICATION_DEADLINE, "INFO replication to show 2 connected replicas", interval=0.5)
    except AssertionError:
        raise AssertionError(f"the replicas do not follow the master; supervision1 sees: "
                             f"{json.dumps(last[0], indent=1)[:3000]}") from None


def test_an_item_written_through_one_api_is_read_through_the_other(seed: Deployed) -> None:
    name = f"written-through-api1-{uuid.uuid4().hex[:8]}"
    written = post_item(seed.server, "api1", name)
    assert written.status_code == 201, written.text
    assert written.json()["written_to"] == "mongodb:27017"  # the master: the first of MONGODB_HOSTS_PORTS
    _, read_from, _ = read_back(seed.server, "api2", name)
    assert read_from in REPLICAS  # read from a replica, not from the master


def test_the_tools_image_dumps_the_database(seed: Deployed) -> None:
    name = f"dumped-{uuid.uuid4().hex[:8]}"
    written = post_item(seed.server, "api2", name)
    assert written.status_code == 201, written.text
    assert name in dumped_names(seed.server)


def test_dockyard_run_restores_the_export_with_the_tools_image_and_exec_reaches_an_api(seed: Deployed) -> None:
    """The seed restored its exports from a tools container that slept; here the tools image runs
    once, as no service, with the environment's configuration and network."""
    srv = seed.server
    restored = srv.cli(*TOOLS, "restore.sh", "database/export/sample/crigen.json", "--drop", check=False)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    read_back(srv, "api1", "compteur gaz - Saint-Denis")
    execd = srv.cli("exec", APP, "api2", "--", "sh", "-c", 'echo "$MONGODB_DB"; hostname')
    assert execd.stdout.splitlines()[0] == "crigen", execd.stdout + execd.stderr


def test_a_backup_of_the_master_s_volume_brings_its_data_back(seed: Deployed) -> None:
    srv = seed.server
    name = f"backed-up-{uuid.uuid4().hex[:8]}"
    assert post_item(srv, "api1", name).status_code == 201
    read_back(srv, "api2", name)
    redis = (*TOOLS, "redis-cli", "-h", "mongodb", "-p", "27017")
    assert srv.cli(*redis, "SAVE").returncode == 0  # the data on disk: what a backup can copy
    taken = json.loads(srv.cli("volumes", "backup", APP, "mongodb-master.data", "--json").stdout)
    assert taken["running"] == ["mongodb-master"]
    assert srv.cli(*redis, "FLUSHALL").returncode == 0  # the data destroyed
    wait_until(lambda: name not in names_read_through(srv, "api2")[0], REPLICATION_DEADLINE, "the flush to replicate")
    srv.cli("volumes", "restore", APP, "mongodb-master.data", taken["id"], "--yes")
    read_back(srv, "api2", name)


def test_the_master_keeps_its_data_across_a_new_image(seed: Deployed, engine: docker.DockerClient) -> None:
    srv, repo = seed.server, seed.repo
    # the compose file as the seed wrote it: the database image's VOLUME /data is kept, one
    # volume per database service
    volumes = srv.api("GET", f"/api/v1/apps/{APP}/environments/production/volumes").json()
    assert sorted((v["name"], tuple(v["used_by"])) for v in volumes) == [
        (f"{db}.data", (db,)) for db in ("mongodb-master", "mongodb-slave1", "mongodb-slave2")], volumes

    name = f"before-the-new-image-{uuid.uuid4().hex[:8]}"
    written = post_item(srv, "api1", name)
    assert written.status_code == 201, written.text
    read_back(srv, "api2", name)
    master_before = containers(srv)["mongodb-master"]

    # A new version of the database stand-in: its header raised, its content changed.
    dockerfile = repo / "base-images" / "redis-replicaset" / "Dockerfile"
    text = dockerfile.read_text()
    assert "# VERSION   0.1\n" in text
    make_repo(repo, {dockerfile.relative_to(repo).as_posix():
                     text.replace("# VERSION   0.1\n", "# VERSION   0.2\n") + 'LABEL seed.revision="2"\n'})
    push = srv.push(repo, APP)
    assert push.returncode == 0, push.stderr
    versions = {(i["repository"], i["version"]) for i in srv.api("GET", f"/api/v1/apps/{APP}/images").json()}
    assert ("seed/seed-redis-replicaset", "0.2") in versions, versions
    master_after = containers(srv)["mongodb-master"]
    assert master_after["id"] != master_before["id"] and master_after["image"] != master_before["image"]

    # The new master loaded it from the volume; the new replicas synced it from the new master.
    assert name in dumped_names(srv), "the new master container started without the data"
    for service in ("api1", "api2"):
        _, read_from, _ = read_back(srv, service, name)
        assert read_from in REPLICAS
    wait_until(lambda: replicas_follow(replication(srv)), REPLICATION_DEADLINE, "the new replicas to follow")


def test_the_stack_runs_in_recette_beside_production(seed: Deployed, engine: docker.DockerClient) -> None:
    """examples/dockyard.yml added to the seed: production and recette, with their own variables
    and a secret each; recette (deployed by pushes to develop) publishes every host port remapped,
    so both run on this host at once. Each api sees its own values; recette's data is its own;
    recette's secret shows nowhere."""
    from tests.e2e.test_variables_and_secrets import cli_with_input, leaks

    srv, repo = seed.server, seed.repo
    prod_secret, recette_secret = f"prod-{uuid.uuid4().hex}", f"recette-{uuid.uuid4().hex}"
    refused = srv.push(make_repo(repo, {"dockyard.yml": (EXAMPLE.parent / "dockyard.yml").read_text()}), APP)
    assert refused.returncode != 0 and "needs the secret(s) MONGODB_PASSWORD" in refused.stderr, refused.stderr
    cli_with_input(srv, prod_secret + "\n", "secrets", "set", APP, "MONGODB_PASSWORD")
    cli_with_input(srv, recette_secret + "\n", "secrets", "set", APP, "MONGODB_PASSWORD", "--env", "recette")
    production = srv.push(repo, APP)
    assert production.returncode == 0 and "is live" in production.stderr, production.stderr
    subprocess.run(["git", "branch", "-f", "develop"], cwd=repo, check=True)
    recette = srv.push(repo, APP, "develop")
    assert recette.returncode == 0, recette.stderr
    assert "recette: added, as dockyard.yml declares" in recette.stderr and "is live in recette" in recette.stderr

    def api_env(env: str, service: str) -> Any:
        where = f"{service}.{APP}.localhost" if env == "production" else f"{service}.{env}.{APP}.localhost"
        body = srv.body(where, "/env")
        return json.loads(body) if body.startswith("{") else body

    assert api_env("production", "api1")["MONGODB_DB"] == "crigen"
    assert api_env("recette", "api1")["MONGODB_DB"] == "crigen_recette"
    assert api_env("recette", "api2")["MONGODB_USER"] == "crigen_recette"
    # the remapped host ports answer beside production's
    for port in (50011, 51011):
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["status"] == "ok", port
    status = srv.api("GET", f"/api/v1/apps/{APP}/environments/recette").json()
    assert sorted(p["host_port"] for p in status["ports"]) == [51001, 51002, 51011, 51012, 51021, 51022]
    # recette's database is its own
    name = f"only-in-recette-{uuid.uuid4().hex[:8]}"
    written = httpx.post("http://127.0.0.1:51011/items", json={"name": name}, timeout=10)
    assert written.status_code == 201, written.text
    wait_until(lambda: name in str(httpx.get("http://127.0.0.1:51012/items", timeout=5).text), REPLICATION_DEADLINE,
               "the item read back through recette's api2")
    assert name not in httpx.get("http://127.0.0.1:50012/items", timeout=5).text
    # recette's secret reached its containers, and nothing else
    recette_api = next(c for c in status["containers"] if c["service"] == "api1")
    env = engine.containers.get(recette_api["id"]).attrs["Config"]["Env"]
    assert f"MONGODB_PASSWORD={recette_secret}" in env
    assert leaks(srv, APP, [recette_secret, prod_secret], [production.stdout + production.stderr,
                                                           recette.stdout + recette.stderr],
                 envs=("production", "recette")) == []
