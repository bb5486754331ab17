"""A build never changes what a name means outside its own app, cannot hold the server for
ever, and does not wait for another app's build."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import docker
import docker.errors
import httpx

from tests.support import BASE_IMAGE, Server, jobs_of, make_repo, static_site, wait_until


def test_a_base_header_name_never_becomes_a_tag_in_the_engine(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """The measured attack: a base image whose header is `docker.io/library/node`, VERSION 20,
    used to re-point `node:20` for every app and every `docker run` on the host while the
    dependent image built (and for good after a crash mid-build)."""
    public = "docker.io/library/node:20"
    engine.images.get(BASE_IMAGE).tag(public)  # what node:20 means on this host before the push
    before = engine.images.get(public).id
    try:
        server.cli("apps", "create", app_name)
        files = static_site("built on my node", version="1.0", name="registry.example.com/team/web")
        files["Dockerfile"] = files["Dockerfile"].replace(f"FROM {BASE_IMAGE}", f"FROM {public}\nRUN sleep 2")
        files["Dockerfile-node"] = (
            "# docker.io/library/node\n# VERSION 20\n"
            f"FROM {BASE_IMAGE}\nRUN echo mine > /node-marker\n"
        )
        repo = make_repo(tmp_path / "src", files)
        push = subprocess.Popen(["git", "push", server.remote(app_name), "main"], cwd=repo,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        seen: set[str] = set()
        while push.poll() is None:  # all along the build, node:20 means what it meant
            seen.add(engine.images.get(public).id)
            time.sleep(0.05)
        stderr = push.communicate()[1]
        assert push.returncode == 0, stderr
        assert seen == {before}
        assert engine.images.get(public).id == before
        assert server.body(f"{app_name}.localhost") == "built on my node\n"
        assert "FROM docker.io/library/node:20: the image built above" in stderr
        # and the image really is built on the app's own base
        web = next(i for i in server.api("GET", f"/api/v1/apps/{app_name}/images").json()
                   if i["dockerfile"] == "Dockerfile")
        out = engine.containers.run(web["image_id"], ["cat", "/node-marker"], remove=True)
        assert out == b"mine\n"
    finally:
        engine.images.remove(public, noprune=True)


def test_a_hung_build_is_cancelled_at_its_deadline_while_other_apps_build(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """`RUN sleep infinity` used to hold the global build lock for ever. The test server's
    DOCKYARD_BUILD_TIMEOUT is 15 s."""
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("previous"))
    assert server.push(repo, app_name).returncode == 0
    files = static_site("never built", version="2.0")
    files["Dockerfile"] = files["Dockerfile"].replace("COPY public /www", "RUN sleep infinity\nCOPY public /www")
    make_repo(repo, files)
    hung = subprocess.Popen(["git", "push", server.remote(app_name), "main"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: any(j["status"] == "running" for j in jobs_of(server, app_name)), 30, "the build to run")
        # meanwhile, the API answers at once and another app builds and goes live
        started = time.monotonic()
        assert server.api("GET", "/api/v1/health").status_code == 200
        assert time.monotonic() - started < 1.0
        other = f"{app_name}-b"
        server.cli("apps", "create", other)
        assert server.push(make_repo(tmp_path / "other", static_site("built meanwhile")), other).returncode == 0
        assert server.body(f"{other}.localhost") == "built meanwhile\n"
        assert hung.poll() is None, "the hung build is still running: the other app did not wait for it"
        stderr = hung.communicate(timeout=60)[1]
    finally:
        if hung.poll() is None:
            hung.kill()
    assert "did not finish within 15s" in stderr and "DOCKYARD_BUILD_TIMEOUT" in stderr, stderr
    assert "the previous release keeps serving" in stderr
    job = jobs_of(server, app_name)[0]
    assert job["status"] == "failed" and "did not finish within 15s" in job["error"]
    assert server.body(f"{app_name}.localhost") == "previous\n"
    # the engine cancelled the build: its container is gone
    wait_until(lambda: not [c for c in engine.containers.list() if "sleep infinity" in " ".join(c.attrs["Args"])
                            or "sleep infinity" in str(c.attrs["Config"].get("Cmd"))],
               20, "the build's container to be removed")


def test_the_api_answers_while_two_apps_build(server: Server, app_name: str, tmp_path: Path) -> None:
    """Builds of different apps run side by side: their jobs overlap in time."""
    names = [f"{app_name}-a", f"{app_name}-b"]
    pushes = []
    for i, name in enumerate(names):
        server.cli("apps", "create", name)
        files = static_site(f"slow {i}")
        files["Dockerfile"] = files["Dockerfile"].replace("COPY public /www", f"RUN sleep 4 && echo {i}\nCOPY public /www")
        repo = make_repo(tmp_path / name, files)
        pushes.append(subprocess.Popen(["git", "push", server.remote(name), "main"], cwd=repo,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    slowest = 0.0
    stop = threading.Event()

    def probe() -> None:
        nonlocal slowest
        while not stop.is_set():
            t = time.monotonic()
            httpx.get(f"{server.url}/api/v1/health", timeout=5)
            slowest = max(slowest, time.monotonic() - t)
            time.sleep(0.1)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    for push in pushes:
        assert push.wait(timeout=120) == 0
    stop.set()
    prober.join()
    a, b = (jobs_of(server, name)[0] for name in names)
    assert a["status"] == b["status"] == "succeeded"
    assert max(a["started_at"], b["started_at"]) < min(a["finished_at"], b["finished_at"]), (a, b)
    assert slowest < 1.0, f"the API took {slowest:.2f}s to answer during the builds"
