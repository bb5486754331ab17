"""Retention and garbage collection end to end, as a user runs them: four versions pushed to a
server that keeps 2 releases, `dockyard gc --dry-run` changes nothing, `dockyard gc` removes the
two oldest images from the engine and the registry (manifests and blobs) and keeps the live and
the retained ones, and `dockyard rollback APP <retained release>` still works."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import httpx
import pytest

from tests.support import Server, make_repo, own_server, static_site

BLOB = 1_000_000


@pytest.fixture(scope="module")
def keeping_two(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[Server]:
    with own_server(tmp_path_factory.mktemp("dockyard-gc"), engine, DOCKYARD_KEEP_RELEASES="2") as srv:
        yield srv


def registry(server: Server) -> httpx.Client:
    password = (server.home / "registry" / "password").read_text().strip()
    return httpx.Client(base_url=f"http://127.0.0.1:{server.registry_port}", auth=("dockyard", password), timeout=10,
                        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})


def in_registry(server: Server, image: dict) -> tuple[bool, bool]:
    """(its manifest, its config blob) are in the registry."""
    with registry(server) as c:
        manifest = c.head(f"/v2/{image['repository']}/manifests/{image['digest']}").status_code
        blob = c.head(f"/v2/{image['repository']}/blobs/{image['image_id']}").status_code
    assert manifest in (200, 404) and blob in (200, 404), (manifest, blob)
    return manifest == 200, blob == 200


def on_host(engine: docker.DockerClient, image_id: str) -> bool:
    try:
        engine.images.get(image_id)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_gc_keeps_the_newest_releases_and_rollback_to_them_works(
    keeping_two: Server, engine: docker.DockerClient, app_name: str, tmp_path: Path
) -> None:
    server, host = keeping_two, f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = tmp_path / "src"
    for n in (1, 2, 3, 4):  # each version with a layer of its own: 1 MB of random hex (about 0.55 MB gzipped)
        make_repo(repo, {**static_site(f"v{n}", version=f"{n}.0"), "public/blob.txt": os.urandom(BLOB // 2).hex()})
        push = server.push(repo, app_name)
        assert push.returncode == 0 and "is live" in push.stderr, push.stderr
    assert server.body(host).strip() == "v4"
    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()
    r4, r3, r2, r1 = (r["id"] for r in releases)
    images = {i["version"]: i for i in server.api("GET", f"/api/v1/apps/{app_name}/images").json()}
    assert sorted(images) == ["1.0", "2.0", "3.0", "4.0"]
    assert all(on_host(engine, i["image_id"]) and in_registry(server, i) == (True, True) for i in images.values())

    # --help says what it does
    helped = server.cli("gc", "--help")
    assert "--dry-run" in helped.stdout and "DOCKYARD_KEEP_RELEASES" in helped.stdout, helped.stdout

    # a dry run says what would go and changes nothing, through the CLI and the API
    dry = server.cli("gc", "--dry-run")
    assert "would remove:" in dry.stdout and "nothing changed" in dry.stdout, dry.stdout
    listed = dict(re.findall(rf"{app_name}\s+{app_name}/site:(\S+)\s+[\d.]+ [kMG]?B\s+(.+)", dry.stdout))
    assert listed == {"1.0": "its releases are older than the 2 kept", "2.0": "its releases are older than the 2 kept"}
    answer = server.api("POST", "/api/v1/gc", params={"dry_run": "true"})
    assert answer.status_code == 200 and answer.json()["dry_run"] is True, answer.text
    assert sorted(i["tag"] for i in answer.json()["removed"] if i["app"] == app_name) == ["1.0", "2.0"]
    assert {i["version"] for i in server.api("GET", f"/api/v1/apps/{app_name}/images").json()} == set(images)
    assert all(on_host(engine, i["image_id"]) and in_registry(server, i) == (True, True) for i in images.values())
    assert "/api/v1/gc" in server.api("GET", "/openapi.json").json()["paths"]

    # the collection
    out = server.cli("gc", "-v")
    assert "removed:" in out.stdout and "kept:" in out.stdout, out.stdout
    assert f"release {r4} is production's live release" in out.stdout
    assert f"release {r3} is one of production's 2 newest" in out.stdout
    figures = re.search(r"(\d+) image\(s\) removed, (\d+) kept: (\d+) local image\(s\) \(of ([\d.]+ [kMG]?B), "
                        r"layers they shared with others included\), (\d+) registry manifest\(s\); the registry "
                        r"freed (\d+) blob\(s\), ([\d.]+) ([kMG]?B) in ([\d.]+)s", out.stdout)
    assert figures is not None, out.stdout
    removed, kept, local, local_size, manifests, blobs, registry_freed, unit, seconds = figures.groups()
    assert (removed, kept, local, manifests) == ("2", "2", "2", "2") and int(blobs) >= 6, out.stdout
    assert unit == "MB" and float(registry_freed) >= 2 * 0.5, out.stdout  # the two 1 MB layers, gzipped
    print(f"gc: {removed} images removed ({local_size} of images on the host), {manifests} manifests, {blobs} blobs "
          f"and {registry_freed} {unit} freed in the registry, {seconds}s")

    for gone in ("1.0", "2.0"):
        assert not on_host(engine, images[gone]["image_id"]), gone
        assert in_registry(server, images[gone]) == (False, False), gone  # manifest deleted, blobs collected
    for stays in ("3.0", "4.0"):
        assert on_host(engine, images[stays]["image_id"]), stays
        assert in_registry(server, images[stays]) == (True, True), stays
    assert {i["version"] for i in server.api("GET", f"/api/v1/apps/{app_name}/images").json()} == {"3.0", "4.0"}
    assert server.body(host).strip() == "v4"  # the live release never noticed

    # a retained release can be returned to
    back = server.cli("rollback", app_name, str(r3))
    assert "is live" in back.stdout, back.stdout
    assert server.body(host).strip() == "v3"

    # a collected one cannot, and the live release keeps serving
    refused = server.cli("rollback", app_name, str(r1), check=False)
    assert refused.returncode != 0, refused.stdout
    print(f"rollback to a collected release: {(refused.stdout + refused.stderr).strip().splitlines()[-3:]}")
    assert server.body(host).strip() == "v3" and r1 < r2 < r3

    # and a second run has nothing to remove: the rollback and v4 are the 2 kept (v3 twice counts once)
    again = server.api("POST", "/api/v1/gc").json()
    assert [i for i in again["removed"] if i["app"] == app_name] == [] and again["manifests"] == 0
