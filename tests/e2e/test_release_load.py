"""The release engine under load: 4 clients call through the proxy, none of their requests sent
twice, during 20 consecutive releases of a web service with 2 replicas, alone and in a compose
stack. One release's new version fails its health check; in another, the new containers exit
during the monitor window. Every request is answered, both bad releases are reported failed with
their reasons, and the old version keeps answering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support import BASE_IMAGE, Load, Server, make_repo, own_server

RELEASES = 20
UNHEALTHY, EXITS = 7, 13  # which releases are bad
DECLARED = ("environments:\n  production:\n    services:\n      web:\n        replicas: 2\n"
            "        health: {{path: {path}}}\n")
STACK = ("services:\n  web:\n    build: .\n    ports: ['8000']\n{command}"
         "  worker:\n    build: .\n    command: [sleep, '600']\n"
         "  api:\n    build: .\n    command: [httpd, -f, -p, '9000', -h, /www]\n    expose: ['9000']\n")
# the new containers answer (and pass their check), then exit 2.5 s later: within the window
EXITING = "    command: [sh, -c, 'httpd -p 8000 -h /www; sleep 2.5; echo leaving now; exit 3']\n"


def version(n: int, stack: bool) -> dict[str, str]:
    """Release ``n`` of the app: busybox httpd serving "v<n>" at / and its check at /health.txt;
    the release whose check fails asks for a path it does not serve."""
    files = {
        "Dockerfile": f"FROM {BASE_IMAGE}\nCOPY www /www\nEXPOSE 8000\n"
                      'CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]\n',
        "www/index.html": f"v{n}\n",
        "www/health.txt": "ok\n",
        "dockyard.yml": DECLARED.format(path="/missing.txt" if n == UNHEALTHY else "/health.txt"),
    }
    if stack:
        files["docker-compose.yml"] = STACK.format(command=EXITING if n == EXITS else "")
    elif n == EXITS:
        files["Dockerfile"] = files["Dockerfile"].replace(
            'CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]',
            'CMD ["sh", "-c", "httpd -p 8000 -h /www; sleep 2.5; echo leaving now; exit 3"]')
    return files


@pytest.fixture(scope="module")
def loaded_server(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[Server]:
    """A server that watches new containers for 4 s after the switch (the shared one: 1 s)."""
    with own_server(tmp_path_factory.mktemp("load-home"), engine, DOCKYARD_MONITOR_SECONDS="4",
                    DOCKYARD_READY_TIMEOUT="8") as srv:
        yield srv


@pytest.mark.parametrize("stack", [False, True], ids=["web-service", "compose-stack"])
def test_twenty_releases_under_load_fail_no_request(
    loaded_server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient, stack: bool
) -> None:
    server, host = loaded_server, f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", version(0, stack))
    first = server.push(repo, app_name)
    assert first.returncode == 0 and "is live" in first.stderr, first.stderr
    live, outcomes = 0, {}
    with Load(server, host, clients=4, resend=False, pause=0.01) as load:
        for n in range(1, RELEASES + 1):
            make_repo(repo, version(n, stack))
            push = server.push(repo, app_name)
            outcomes[n] = push.stderr
            if n in (UNHEALTHY, EXITS):
                assert "Release failed; the previous release keeps serving." in push.stderr, push.stderr
            else:
                assert "is live" in push.stderr, push.stderr
                live = n
            assert server.body(host).strip() == f"v{live}"
    assert ("web did not pass its health check (GET /missing.txt, expecting 2xx or 3xx)"
            in outcomes[UNHEALTHY]), outcomes[UNHEALTHY]
    assert "web exited" in outcomes[EXITS] and "leaving now" in outcomes[EXITS], outcomes[EXITS]
    answered = sum(load.answers.values())
    print(f"{'stack' if stack else 'web service'}: {RELEASES} releases, {answered} requests, "
          f"{len(load.failed)} failed: {load.failed[:5]}")
    assert load.failed == [] and answered > 1000, load.failed[:10]
    assert set(load.answers) <= {f"v{n}" for n in range(RELEASES + 1)}
    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases?limit=50").json()
    failed = {r["id"]: r for r in releases if r["status"] == "failed"}
    assert len(failed) == 2, [(r["id"], r["status"]) for r in releases]
    assert server.body(host).strip() == f"v{RELEASES}"
    web = engine.containers.list(filters={"label": [f"dockyard.app={app_name}", "dockyard.service=web"]})
    assert len(web) == 2  # the live release's two replicas, and nothing left of the others
