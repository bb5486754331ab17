"""Health gates end to end: a release waits until the service's dockyard.yml path answers 2xx or
3xx; a version whose path answers 500 is not released and the old one keeps serving; a check of a
service with no port is refused at the push; a version that crashes in the monitor window after
the switch is rolled back to the old containers, still running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support import BASE_IMAGE, Load, Server, make_repo, own_server

COMPOSE = "services:\n  web:\n    build: .\n    ports: ['8000']\n  worker:\n    build: .\n    command: [sleep, '600']\n"
CHECK = "environments:\n  production:\n    services:\n      {service}:\n        health: {{path: /cgi-bin/ready}}\n"


def site(text: str, ready: str) -> dict[str, str]:
    """busybox httpd serving ``text`` at / and, at /cgi-bin/ready, the status ``ready``."""
    return {
        "Dockerfile": f"FROM {BASE_IMAGE}\nCOPY www /www\nRUN chmod +x /www/cgi-bin/ready\nEXPOSE 8000\n"
                      'CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]\n',
        "www/index.html": text + "\n",
        "www/cgi-bin/ready": f"#!/bin/sh\necho 'Status: {ready}'\necho 'Content-Type: text/plain'\necho\necho {ready}\n",
        "docker-compose.yml": COMPOSE,
        "dockyard.yml": CHECK.format(service="web"),
    }


def test_a_release_waits_for_the_check_and_a_failing_one_keeps_the_old_version(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", site("v1", "204 No Content"))
    push = server.push(repo, app_name)
    assert push.returncode == 0 and "is live" in push.stderr, push.stderr
    assert "waiting for web to pass GET /cgi-bin/ready" in push.stderr, push.stderr
    assert "not honoured" not in push.stderr
    assert server.body(host).strip() == "v1"

    make_repo(repo, site("v2", "500 Internal Server Error"))
    push = server.push(repo, app_name)  # git stored the commit; its deploy job fails
    assert "failed" in push.stderr.splitlines()[-3] and "is live" not in push.stderr, push.stderr
    assert ("web did not pass its health check (GET /cgi-bin/ready, expecting 2xx or 3xx) within 20s: "
            "it answered 500") in push.stderr, push.stderr
    assert server.body(host).strip() == "v1"  # the old version keeps serving
    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()
    assert [r["status"] for r in releases][:2] == ["failed", "live"], releases

    # a check of a service without a port: refused at the push, nothing changes
    make_repo(repo, {**site("v3", "200 OK"), "dockyard.yml": CHECK.format(service="worker")})
    push = server.push(repo, app_name)
    assert push.returncode != 0
    assert "services/worker/health: worker has no port to ask" in push.stderr, push.stderr
    assert server.body(host).strip() == "v1"
    assert len(server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()) == 2


@pytest.fixture(scope="module")
def watching_server(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[Server]:
    """A server that watches new containers for 5 s after the switch, as by default (the shared
    server's window is 1 s, to keep the suite short)."""
    with own_server(tmp_path_factory.mktemp("monitor-home"), engine, DOCKYARD_MONITOR_SECONDS="5",
                    DOCKYARD_READY_TIMEOUT="10") as srv:
        yield srv


def test_a_crash_in_the_monitor_window_rolls_back_to_the_old_containers(
    watching_server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    server, host = watching_server, f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", {**site("v1", "200 OK"), "docker-compose.yml": COMPOSE.split("  worker:")[0]})
    push = server.push(repo, app_name)
    assert push.returncode == 0 and "Watching 1 new container for 5s" in push.stderr, push.stderr
    [old] = engine.containers.list(filters={"label": f"dockyard.app={app_name}"})

    # v2 answers (and passes its check), then exits 2 s later: after the switch, within the window
    crashing = {**site("v2", "200 OK"), "docker-compose.yml": COMPOSE.split("  worker:")[0]
                + "    command: [sh, -c, 'httpd -p 8000 -h /www; sleep 2; echo crashing; exit 3']\n"}
    make_repo(repo, crashing)
    with Load(server, host) as load:
        push = server.push(repo, app_name)
    assert "service web exited" in push.stderr and "s after the switch" in push.stderr, push.stderr  # (Docker may have restarted it)
    assert "crashing" in push.stderr  # its last output
    assert "Release failed; the previous release keeps serving." in push.stderr
    assert server.body(host).strip() == "v1"
    running = engine.containers.list(filters={"label": f"dockyard.app={app_name}"})
    assert [c.id for c in running] == [old.id]  # the old container kept running; the new one is gone
    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()
    assert [r["status"] for r in releases] == ["failed", "live"]
    # Traffic went to v2 between the switch and its crash: the proxy tried the requests v2 could
    # not answer again, on the old container once the routes were back (none sent twice by a client)
    assert load.failed == [], load.failed[:5]
    print(f"crash in the monitor window: {sum(load.answers.values())} requests, {len(load.failed)} failed, "
          f"{len(load.resent)} sent again; answers {dict(load.answers)}")


def test_a_service_that_exposes_a_port_is_ready_once_it_accepts_connections_there(
    watching_server: Server, app_name: str, tmp_path: Path
) -> None:
    """Neither web nor with a healthcheck: its compose `expose` port must accept a connection."""
    server, host = watching_server, f"{app_name}.localhost"
    queue = ("  queue:\n    build: .\n    expose: ['{port}']\n"
             "    command: [sh, -c, 'sleep 2; exec httpd -f -p 7000 -h /www']\n")
    server.cli("apps", "create", app_name)
    files = {**site("v1", "200 OK"), "docker-compose.yml": COMPOSE.split("  worker:")[0] + queue.format(port=7000)}
    repo = make_repo(tmp_path / "src", files)
    push = server.push(repo, app_name)
    assert push.returncode == 0 and "waiting for queue to accept connections on port 7000" in push.stderr, push.stderr
    assert "is live" in push.stderr and server.body(host).strip() == "v1"

    files = {**site("v2", "200 OK"), "docker-compose.yml": COMPOSE.split("  worker:")[0] + queue.format(port=7001)}
    push = server.push(make_repo(repo, files), app_name)
    assert "queue did not accept TCP connections on port 7001 within 10s" in push.stderr, push.stderr
    assert "Release failed; the previous release keeps serving." in push.stderr
    assert server.body(host).strip() == "v1"
