"""Images are named and versioned from the source; a version tag stays bound to its first digest;
images of one app that build FROM each other build in dependency order."""

from __future__ import annotations

from pathlib import Path

import docker
import docker.errors
import httpx
import pytest

from tests.support import BASE_IMAGE, Server, head, make_repo, static_site


def registry_manifest_digest(server: Server, repository: str, tag: str) -> str:
    password = (server.home / "registry" / "password").read_text().strip()
    r = httpx.head(
        f"http://127.0.0.1:{server.registry_port}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
        auth=("dockyard", password),
    )
    assert r.status_code == 200, r.text
    return r.headers["Docker-Content-Digest"]


def test_changed_build_under_same_version_gets_a_distinct_tag(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("first", version="0.2"))
    assert server.push(repo, app_name).returncode == 0
    first = server.api("GET", f"/api/v1/apps/{app_name}/images").json()
    assert [(i["version"], i["tag"]) for i in first] == [("0.2", "0.2")]
    assert registry_manifest_digest(server, f"{app_name}/site", "0.2") == first[0]["digest"]

    make_repo(repo, static_site("second, same VERSION", version="0.2"))
    commit = head(repo)
    push = server.push(repo, app_name)
    assert push.returncode == 0
    assert "WARNING" in push.stderr and "already bound to another build" in push.stderr
    images = server.api("GET", f"/api/v1/apps/{app_name}/images").json()
    newest = images[0]
    assert newest["version"] == f"0.2+g{commit[:8]}" and newest["tag"] == f"0.2_g{commit[:8]}"
    assert newest["digest"] != first[0]["digest"] and newest["commit"] == commit
    # the first tag was not overwritten
    assert registry_manifest_digest(server, f"{app_name}/site", "0.2") == first[0]["digest"]
    assert server.body(f"{app_name}.localhost") == "second, same VERSION\n"
    # the release pins the digest
    live = server.api("GET", f"/api/v1/apps/{app_name}").json()["live_release"]
    assert live["services"][0]["image"].endswith(f"/{app_name}/site@{newest['digest']}")


def test_versions_from_label_and_commit(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    files = static_site("labelled", version=None)
    files["Dockerfile"] = files["Dockerfile"].replace(
        "EXPOSE 8000", 'EXPOSE 8000\nLABEL org.opencontainers.image.version="3.1.4"'
    )
    files["Dockerfile-worker"] = f"FROM {BASE_IMAGE}\nCMD [\"sleep\", \"3600\"]\n"
    repo = make_repo(tmp_path / "src", files)
    commit = head(repo)
    assert server.push(repo, app_name).returncode == 0
    versions = {i["repository"]: i["version"] for i in server.api("GET", f"/api/v1/apps/{app_name}/images").json()}
    assert versions == {f"{app_name}/{app_name}": "3.1.4", f"{app_name}/{app_name}-worker": f"g{commit[:8]}"}
    out = server.cli("images", app_name).stdout
    assert "3.1.4" in out and f"g{commit[:8]}" in out and commit[:10] in out and "MB" in out


def test_images_that_build_from_each_other_build_in_order(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """The seed's api repo: a tools image FROM the app's own image, by its header name."""
    server.cli("apps", "create", app_name)
    files = static_site("web on base", version="0.3", name="registry.example.com/crigen/web")
    files["Dockerfile"] = files["Dockerfile"].replace(
        f"FROM {BASE_IMAGE}", "FROM registry.example.com/crigen/base:0.2"
    )
    files["Dockerfile-base"] = (
        "# registry.example.com/crigen/base\n#\n# VERSION   0.2\n\n"
        f"FROM {BASE_IMAGE}\nRUN echo from-base > /base-marker\n"
    )
    repo = make_repo(tmp_path / "src", files)
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    assert push.stderr.index("Building Dockerfile-base") < push.stderr.index("Building Dockerfile ->")
    images = {i["repository"]: i["version"] for i in server.api("GET", f"/api/v1/apps/{app_name}/images").json()}
    assert images == {f"{app_name}/base": "0.2", f"{app_name}/web": "0.3"}
    assert server.body(f"{app_name}.localhost") == "web on base\n"
    # the header name was lent to the build only: no other app on this host sees it
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get("registry.example.com/crigen/base:0.2")


def test_a_dockerfile_in_a_folder_builds_with_that_folder_as_context(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    server.cli("apps", "create", app_name)
    files = {f"site/{k}": v for k, v in static_site("from the site folder").items()}
    files["README"] = "the site lives in site/\n"
    assert server.push(make_repo(tmp_path / "src", files), app_name).returncode == 0
    assert server.body(f"{app_name}.localhost") == "from the site folder\n"


def test_dockerignore_keeps_files_out_of_the_image(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    files = static_site("public page")
    files["public/secret.txt"] = "do not ship\n"
    files["public/notes.log"] = "nor this\n"
    files[".dockerignore"] = "# keep secrets out\npublic/secret.txt\n*/*.log\n"
    assert server.push(make_repo(tmp_path / "src", files), app_name).returncode == 0
    assert server.body(f"{app_name}.localhost") == "public page\n"
    assert server.get(f"{app_name}.localhost", "/secret.txt").status_code == 404
    assert server.get(f"{app_name}.localhost", "/notes.log").status_code == 404
