"""Crash safety end to end: dockyard is killed (SIGKILL) in the middle of a release, after the new
containers started (before the switch) and after the switch (in the monitor window). The app keeps
answering throughout; at restart the interrupted release is marked failed, no container of it is
left, the proxy serves the live release, and the resumed job releases the new version properly."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.support import Load, Server, make_repo, own_server, static_site, wait_until


@pytest.fixture
def crashing_server(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[Server]:
    """A server of its own (it is killed), with a monitor window long enough to kill it in."""
    with own_server(tmp_path_factory.mktemp("crash-home"), engine, DOCKYARD_MONITOR_SECONDS="6") as srv:
        yield srv


def web_containers(engine: docker.DockerClient, app: str) -> dict[str, int]:
    """The app's containers, name -> release."""
    found = engine.api.containers(all=True, filters={"label": f"dockyard.app={app}"})  # one call: no inspect
    return {c["Names"][0]: int(c["Labels"]["dockyard.release"]) for c in found}


def kill_during_release(server: Server, repo: Path, app: str, when: Callable[[], bool]) -> None:
    """Push in the background and SIGKILL the server once ``when`` holds."""
    push = subprocess.Popen(["git", "push", server.remote(app), "main"], cwd=repo, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(when, 60, "the release to reach the step to kill dockyard at", interval=0.05)
        server.stop(signal.SIGKILL)
    finally:
        push.wait(timeout=60)


@pytest.mark.parametrize("step", ["new containers started", "after the switch"])
def test_a_release_killed_midway_is_recovered_with_no_orphan_and_no_failed_request(
    crashing_server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient, step: str
) -> None:
    server, host = crashing_server, f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("v1"))
    assert server.push(repo, app_name).returncode == 0
    [first] = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()

    make_repo(repo, static_site("v2", version="2.0"))
    with Load(server, host) as load:
        if step == "new containers started":
            kill_during_release(server, repo, app_name, lambda: len(web_containers(engine, app_name)) == 2)
        else:
            kill_during_release(server, repo, app_name, lambda: server.body(host).strip() == "v2")
        killed = web_containers(engine, app_name)
        time.sleep(1.0)  # nobody runs the control plane: the proxy and the containers go on
        server.start()
        wait_until(lambda: server.body(host).strip() == "v2" and len(web_containers(engine, app_name)) == 1, 90,
                   "the resumed job to release v2")
        time.sleep(0.5)
    assert len(killed) == 2, killed  # killed with both versions running

    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()
    statuses = [(r["status"], r["error"]) for r in releases]
    assert statuses[0][0] == "live" and statuses[-1] == ("superseded", None) and releases[-1]["id"] == first["id"]
    assert ("failed", "interrupted: dockyard stopped during this release; the previous release kept serving") in \
        statuses, statuses
    running = web_containers(engine, app_name)
    assert list(running.values()) == [releases[0]["id"]], running  # only the live release's container
    log = (server.home / "server.log").read_text()
    assert "recovery:" in log and "started by a release that never went live" in log, log[-3000:]
    assert load.failed == [], load.failed[:5]
    print(f"killed at '{step}': {sum(load.answers.values())} requests, {len(load.failed)} failed, "
          f"{len(load.resent)} sent again")


@pytest.fixture
def draining_server(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[Server]:
    """A server of its own (it is killed) that drains right after the switch (no monitor window)."""
    with own_server(tmp_path_factory.mktemp("drain-home"), engine, DOCKYARD_MONITOR_SECONDS="0") as srv:
        yield srv


def slow_site(text: str) -> dict[str, str]:
    """A static site whose /cgi-bin/slow answers after 4 s: a request the old container is still
    answering while it drains."""
    files = static_site(text)
    files["Dockerfile"] = files["Dockerfile"].replace("COPY public /www", "COPY public /www\nRUN chmod +x /www/cgi-bin/slow")
    files["public/cgi-bin/slow"] = f"#!/bin/sh\nsleep 4\necho 'Content-Type: text/plain'\necho\necho slow {text}\n"
    return files


def test_a_release_killed_while_the_old_container_drains_loses_no_request(
    draining_server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    import threading

    import httpx

    server, host = draining_server, f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", slow_site("v1"))
    assert server.push(repo, app_name).returncode == 0
    slow: list[str] = []

    def slow_request() -> None:
        r = httpx.get(f"http://127.0.0.1:{server.proxy_port}/cgi-bin/slow", headers={"Host": host}, timeout=30)
        slow.append(f"{r.status_code} {r.text.strip()}")

    make_repo(repo, slow_site("v2"))
    with Load(server, host, resend=False) as load:
        pending = threading.Thread(target=slow_request)
        pending.start()  # v1 answers it for 4 s: the old container drains that long
        time.sleep(0.3)

        def draining() -> bool:
            deploys = [j for j in server.api("GET", f"/api/v1/jobs?app={app_name}").json() if j["kind"] == "deploy"]
            return any("Draining 1 old container" in server.api("GET", f"/api/v1/jobs/{j['id']}/logs").text
                       for j in deploys if j["status"] == "running")

        kill_during_release(server, repo, app_name, draining)
        killed = web_containers(engine, app_name)
        server.start()
        pending.join(timeout=30)
        wait_until(lambda: server.body(host).strip() == "v2" and len(web_containers(engine, app_name)) == 1, 90,
                   "the live release alone")
        time.sleep(0.5)
    assert len(killed) == 2, killed  # killed while the old container drained
    assert slow == ["200 slow v1"]  # the request the old container was answering was answered
    assert load.failed == [], load.failed[:5]
    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()
    assert releases[0]["status"] == "live"
    assert [r for r in releases if r["status"] in ("pending", "switching")] == []
    running = web_containers(engine, app_name)
    # one container, v2's (the resumed job found v2 running and recorded it again, as a release
    # that adopts the containers it needs)
    assert len(running) == 1 and set(running.values()) <= {r["id"] for r in releases[:2]}, (running, releases[:3])
    print(f"killed while draining: {sum(load.answers.values())} requests, {len(load.failed)} failed")
