"""Named volumes keep an app's data across releases: stop-first for the services that use one,
scoped to the app and environment, listed with their sizes, removed only when asked for."""

from __future__ import annotations

from pathlib import Path

import docker

from tests.support import BASE_IMAGE, Server, make_repo

STORE = """FROM {base}
RUN echo {marker} > /marker
CMD ["sh", "-c", "[ -f /data/first ] || cat /marker > /data/first; cat /marker > /data/last; exec httpd -f -p 8000 -h /data"]
EXPOSE 8000
"""
COMPOSE = """
services:
  store:
    build: .
    ports: ["8000"]
    volumes: ["data:/data"]
volumes:
  data: {}
"""


def stack(marker: str) -> dict[str, str]:
    return {"Dockerfile": STORE.format(base=BASE_IMAGE, marker=marker), "docker-compose.yml": COMPOSE}


def test_a_volume_keeps_its_data_across_releases_and_is_removed_only_when_asked(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", stack("v1"))
    assert server.push(repo, app_name).returncode == 0
    host = f"{app_name}.localhost"
    assert (server.body(host, "/first"), server.body(host, "/last")) == ("v1\n", "v1\n")

    make_repo(repo, stack("v2"))  # a new image: the container is replaced, the data stays
    push = server.push(repo, app_name)
    assert push.returncode == 0 and "first: it keeps data in a volume" in push.stderr, push.stderr
    assert (server.body(host, "/first"), server.body(host, "/last")) == ("v1\n", "v2\n")

    listed = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/volumes").json()
    assert [(v["name"], v["used_by"]) for v in listed] == [("data", ["store"])]
    volume = engine.volumes.get(listed[0]["volume"])
    assert volume.attrs["Labels"]["dockyard.app"] == app_name
    assert volume.attrs["Labels"]["dockyard.environment"] == "production"
    assert volume.attrs["Labels"]["dockyard.installation"] == server.installation
    assert listed[0]["size"] is None or listed[0]["size"] > 0
    out = server.cli("volumes", "list", app_name).stdout
    assert "data" in out and "store" in out

    # removal: refused unconfirmed, and while a container mounts it
    refused = server.api("DELETE", f"/api/v1/apps/{app_name}/environments/production/volumes/data")
    assert refused.status_code == 400 and "not confirmed" in refused.json()["error"]
    busy = server.cli("volumes", "rm", app_name, "data", "--yes", check=False)
    assert busy.returncode != 0 and "in use" in busy.stderr
    assert server.body(host, "/first") == "v1\n"

    # deleting the app keeps its data; only the confirmed command removes it
    server.cli("apps", "delete", app_name, "--yes")
    assert engine.volumes.get(listed[0]["volume"])
    server.cli("apps", "create", app_name)
    assert server.push(repo, app_name).returncode == 0
    assert server.body(host, "/first") == "v1\n"  # the app's data came back with it
    server.cli("apps", "delete", app_name, "--yes")
    server.cli("apps", "create", app_name)
    gone = server.cli("volumes", "rm", app_name, "data", "--yes")
    assert "removed volume data" in gone.stdout
    assert not engine.volumes.list(filters={"name": listed[0]["volume"]})
