"""Compose keys beyond the basics, pushed as a user would: services reached by their hostname and
container_name, a healthcheck that gates a dependant (service_healthy), a one-shot migration that
gates the web service (service_completed_successfully) and is kept, not run again, while it is
unchanged; user, working_dir, entrypoint and labels on the containers; no warning for any of them."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import docker

from tests.support import BASE_IMAGE, Server, make_repo


def serve(text: str, port: int, then: str = "") -> str:
    """A shell command: serve ``text`` over HTTP on ``port`` (after ``then``)."""
    return f"mkdir -p /tmp/www && echo '{text}' > /tmp/www/index.html; {then}exec httpd -f -p {port} -h /tmp/www"


COMPOSE = f"""\
services:
  db:
    image: {BASE_IMAGE}
    hostname: database
    expose: ["9000"]
    command: ["sh", "-c", "{serve('db says hi', 9000, then='(sleep 2; touch /tmp/healthy) & ')}"]
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/healthy"]
      interval: 300ms
      timeout: 2s
      retries: 3
      start_period: 15s
    labels: {{team: shop}}
    stop_grace_period: 2s
  cache:
    image: {BASE_IMAGE}
    container_name: cache1
    command: ["sh", "-c", "{serve('cache says hi', 9000)}"]
    restart: always
    networks:
      back:
        aliases: [sessions]
  migrate:
    image: {BASE_IMAGE}
    user: "65534:65534"
    working_dir: /srv/migrations
    entrypoint: ["sh", "-c"]
    command: ["wget -q -O - http://database:9000/ && echo MIGRATION_MARK applied in $(pwd) as $(id -u)"]
    depends_on:
      db: {{condition: service_healthy}}
  web:
    build: .
    ports: ["8000"]
    labels: ["role=front"]
    mem_limit: 128m
    depends_on:
      db: {{condition: service_healthy}}
      migrate: {{condition: service_completed_successfully}}
      cache: {{condition: service_started}}
networks:
  back: {{driver: bridge}}
"""

FILES = {
    "Dockerfile": f"FROM {BASE_IMAGE}\nCOPY web /www\nEXPOSE 8000\nCMD [\"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    "web/index.html": "front v1\n",
    "web/cgi-bin/check": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\n"
                         "wget -q -O - http://database:9000/\nwget -q -O - http://cache1:9000/\n"
                         "wget -q -O - http://sessions:9000/\n",
    "docker-compose.yml": COMPOSE,
}


def containers(engine: docker.DockerClient, app: str) -> dict[str, list[dict[str, Any]]]:
    """The app's containers by service, as docker inspect shows them."""
    found: dict[str, list[dict[str, Any]]] = {}
    for c in engine.containers.list(all=True, filters={"label": f"dockyard.app={app}"}):
        found.setdefault(c.labels["dockyard.service"], []).append(engine.api.inspect_container(c.id))
    return found


def test_compose_keys_are_honoured_end_to_end(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", FILES)
    (repo / "web/cgi-bin/check").chmod(0o755)
    subprocess.run(["git", "add", "--chmod=+x", "web/cgi-bin/check"], cwd=repo, check=True)
    make_repo(repo, {})
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    out = push.stderr
    warnings = [line.split("warning: ", 1)[1].strip() for line in out.splitlines() if "warning: " in line]
    assert warnings == [  # every key of the file is honoured; the networks are merged, and that is said
        "docker-compose.yml line 40: networks: the networks 'back', 'default' are merged into the app's one network: "
        "every service reaches every other"]

    # the gates: migrate starts once db is healthy, web once migrate has exited 0
    assert out.index("waiting for db to ") < out.index("Starting migrate")
    assert out.index("waiting for migrate to complete") < out.index("Starting web")
    # names on the app network: hostname, container_name and a network alias, from the web service
    assert server.body(f"{app_name}.localhost", "/cgi-bin/check") == "db says hi\ncache says hi\ncache says hi\n"

    found = containers(engine, app_name)
    (db,), (cache,), (migrate,), (web,) = found["db"], found["cache"], found["migrate"], found["web"]
    assert db["Config"]["Hostname"] == "database" and db["State"]["Health"]["Status"] == "healthy"
    assert db["Config"]["Labels"]["team"] == "shop" and db["Config"]["StopTimeout"] == 2
    assert not any(c["Name"].lstrip("/") in ("database", "cache1") for c in (db, cache))  # dockyard's own names
    assert cache["HostConfig"]["RestartPolicy"]["Name"] == "always"
    assert (migrate["State"]["Status"], migrate["State"]["ExitCode"]) == ("exited", 0)
    assert migrate["HostConfig"]["RestartPolicy"]["Name"] == "no"
    assert (migrate["Config"]["User"], migrate["Config"]["WorkingDir"]) == ("65534:65534", "/srv/migrations")
    assert migrate["Config"]["Entrypoint"] == ["sh", "-c"]
    logs = engine.containers.get(migrate["Id"]).logs().decode()
    assert "db says hi" in logs and "MIGRATION_MARK applied in /srv/migrations as 65534" in logs
    assert web["Config"]["Labels"]["role"] == "front" and web["HostConfig"]["Memory"] == 128 * 1024**2
    assert server.body(f"{app_name}.localhost") == "front v1\n"

    # a change to the web service only: the migration that completed is kept, not run again
    make_repo(repo, {"web/index.html": "front v2\n"})
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    assert "migrate: unchanged, keeping" in push.stderr and "Starting migrate" not in push.stderr
    assert server.body(f"{app_name}.localhost") == "front v2\n"
    assert [c["Id"] for c in containers(engine, app_name)["migrate"]] == [migrate["Id"]]

    # a migration that fails: the release fails with its output, the previous one keeps serving
    make_repo(repo, {"docker-compose.yml": COMPOSE.replace("&& echo MIGRATION_MARK", "&& echo no table && exit 3 #"),
                     "web/index.html": "front v3\n"})
    push = server.push(repo, app_name)
    assert push.returncode == 0  # the push is stored; its deploy failed
    assert "Release failed; the previous release keeps serving." in push.stderr
    assert "service migrate runs once and must exit with code 0: it exited with code 3" in push.stderr
    assert "no table" in push.stderr
    assert server.body(f"{app_name}.localhost") == "front v2\n"


def test_a_bad_key_is_refused_naming_file_line_and_key(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    compose = (f"services:\n  a:\n    image: {BASE_IMAGE}\n    container_name: api1\n"
               f"  b:\n    image: {BASE_IMAGE}\n    hostname: api1\n")
    files = {"docker-compose.yml": compose, "Dockerfile": f"FROM {BASE_IMAGE}\nEXPOSE 8000\n"}
    push = server.push(make_repo(tmp_path / "src", files), app_name)
    assert push.returncode != 0
    assert "docker-compose.yml line 7: services/b/hostname: 'api1' is already a name of service 'a'" in push.stderr
    status = server.api("GET", f"/api/v1/apps/{app_name}").json()
    assert status["containers"] == []  # nothing was started
