"""Replicas end to end: ``deploy: {replicas: 3}`` runs three containers, the proxy spreads requests
over them (each answers with its own host name), a redeploy that changes the service keeps
answering under load with no failed request, and scaling to 1 stops the two others."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import docker

from tests.support import BASE_IMAGE, Load, Server, make_repo, wait_until

DOCKERFILE = f"FROM {BASE_IMAGE}\nEXPOSE 8000\n"


def compose(replicas: int, version: str) -> str:
    serve = ('mkdir -p /tmp/www && echo \\"$$(hostname) $$VERSION\\" > /tmp/www/index.html && '
             "exec httpd -f -p 8000 -h /tmp/www")
    return (f"services:\n  web:\n    build: .\n    ports: ['8000']\n    environment: {{VERSION: {version}}}\n"
            f'    command: ["sh", "-c", "{serve}"]\n    deploy: {{replicas: {replicas}}}\n')


def replicas(engine: docker.DockerClient, app: str) -> dict[int, str]:
    """The app's running web containers: replica index -> container name."""
    found = engine.containers.list(filters={"label": [f"dockyard.app={app}", "dockyard.service=web"]})
    return {int(c.labels["dockyard.replica"]): c.name for c in found}


def answers(server: Server, host: str, count: int) -> Counter[str]:
    return Counter(server.body(host).strip() for _ in range(count))


def test_replicas_spread_traffic_redeploy_without_failures_and_scale_down(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    host = f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", {"Dockerfile": DOCKERFILE, "docker-compose.yml": compose(3, "v1")})
    push = server.push(repo, app_name)
    assert push.returncode == 0 and "is live" in push.stderr, push.stderr
    assert "not honoured" not in push.stderr
    running = replicas(engine, app_name)
    assert sorted(running) == [0, 1, 2], running
    assert all(f"-web-{i}-r" in name for i, name in running.items()), running
    # the proxy spreads the requests over every replica (round-robin)
    assert set(answers(server, host, 12)) == {"web v1", "web-1 v1", "web-2 v1"}
    status = server.cli("status", app_name).stdout
    assert "REPLICA" in status and sum(1 for line in status.splitlines() if line.startswith("web ")) == 3, status

    # a change replaces every replica start-first: no request fails meanwhile
    make_repo(repo, {"docker-compose.yml": compose(3, "v2")})
    with Load(server, host) as load:
        time.sleep(0.5)
        push = server.push(repo, app_name)
        time.sleep(0.5)
    assert push.returncode == 0 and "is live" in push.stderr, push.stderr
    assert "3 old containers drained in" in push.stderr, push.stderr  # after the switch, before they stop
    print(next(line for line in push.stderr.splitlines() if "drained in" in line))
    assert load.failed == [], load.failed[:5]
    assert sum(load.answers.values()) > 20 and set(load.answers) <= {f"{h} {v}" for h in ("web", "web-1", "web-2")
                                                                     for v in ("v1", "v2")}
    print(f"redeploy under load: {sum(load.answers.values())} requests, {len(load.failed)} failed, "
          f"{len(load.resent)} sent again")
    assert set(answers(server, host, 12)) == {"web v2", "web-1 v2", "web-2 v2"}
    after = replicas(engine, app_name)
    assert sorted(after) == [0, 1, 2] and not set(after.values()) & set(running.values())

    # scaling to 1 keeps replica 0 and stops the two others, still without a failed request
    make_repo(repo, {"docker-compose.yml": compose(1, "v2")})
    with Load(server, host) as load:
        push = server.push(repo, app_name)
        time.sleep(0.3)
    assert push.returncode == 0 and "unchanged, keeping" in push.stderr, push.stderr
    assert load.failed == [], load.failed[:5]
    wait_until(lambda: list(replicas(engine, app_name)) == [0], 30, "two replicas to stop")
    assert replicas(engine, app_name) == {0: after[0]}
    assert set(answers(server, host, 6)) == {"web v2"}


def test_replicas_a_service_cannot_run_are_refused_at_the_push(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    stateful = ("services:\n  db:\n    image: " + BASE_IMAGE + "\n    command: [sleep, '600']\n"
                "    volumes: [data:/data]\n    deploy: {replicas: 2}\nvolumes: {data: {}}\n")
    repo = make_repo(tmp_path / "src", {"Dockerfile": DOCKERFILE, "docker-compose.yml": stateful})
    push = server.push(repo, app_name)
    assert push.returncode != 0
    assert ("docker-compose.yml line 6: services/db/deploy/replicas: db cannot run 2 containers: it keeps data in "
            "a volume") in push.stderr, push.stderr
    declared = ("environments:\n  production:\n    services:\n      db: {replicas: 3}\n")
    make_repo(repo, {"docker-compose.yml": stateful.replace("    deploy: {replicas: 2}\n", ""),
                     "dockyard.yml": declared})
    push = server.push(repo, app_name)
    assert push.returncode != 0
    assert "dockyard.yml: environments/production/services/db/replicas: db cannot run 3 containers" in push.stderr
    assert server.api("GET", f"/api/v1/apps/{app_name}/environments/production").json()["containers"] == []


def test_dockyard_scale_applies_at_once_stands_over_pushes_and_refuses_what_cannot_run(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    host = f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", {"Dockerfile": DOCKERFILE, "docker-compose.yml": compose(1, "v1")})
    assert server.push(repo, app_name).returncode == 0
    [first] = replicas(engine, app_name).values()

    out = server.cli("scale", app_name, "web=3")
    assert "web 1 -> 3" in out.stdout and "is live" in out.stdout, out.stdout
    running = replicas(engine, app_name)
    assert sorted(running) == [0, 1, 2] and running[0] == first  # the running one is kept
    assert set(answers(server, host, 12)) == {"web v1", "web-1 v1", "web-2 v1"}

    make_repo(repo, {"docker-compose.yml": compose(1, "v2")})  # the compose file still says 1
    push = server.push(repo, app_name)
    assert push.returncode == 0 and "is live" in push.stderr, push.stderr
    assert sorted(replicas(engine, app_name)) == [0, 1, 2]  # scale stands
    assert set(answers(server, host, 12)) == {"web v2", "web-1 v2", "web-2 v2"}

    for words, error in ((["nope=2"], "the live release has no service 'nope'"), (["web=x"], "is not SERVICE=COUNT"),
                         (["web=101"], "should be a whole number from 0 to 100")):
        refused = server.cli("scale", app_name, *words, check=False)
        assert refused.returncode != 0 and error in refused.stderr, refused.stderr
    assert sorted(replicas(engine, app_name)) == [0, 1, 2]

    with Load(server, host) as load:
        out = server.cli("scale", app_name, "web=1")
    assert "web 3 -> 1" in out.stdout, out.stdout
    assert load.failed == [], load.failed[:5]
    wait_until(lambda: list(replicas(engine, app_name)) == [0], 30, "two replicas to stop")
    assert set(answers(server, host, 4)) == {"web v2"}


def test_a_replica_that_dies_leaves_the_proxy_and_no_request_fails(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    """A replica killed outside any release (SIGKILL, an out-of-memory kill): the proxy tries the
    requests it could not answer on the others, and dockyard takes it out of the route at once,
    until Docker starts it again (its restart policy), when it is routed once more."""
    host = f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", {"Dockerfile": DOCKERFILE, "docker-compose.yml": compose(2, "v1")})
    assert server.push(repo, app_name).returncode == 0
    victim = engine.containers.get(replicas(engine, app_name)[1])
    with Load(server, host, clients=4, pause=0.005) as load:
        time.sleep(0.5)
        os.kill(int(victim.attrs["State"]["Pid"]), signal.SIGKILL)  # a crash, not `docker kill` (Docker restarts it)
        time.sleep(1.5)
        wait_until(lambda: set(answers(server, host, 6)) == {"web v1", "web-1 v1"}, 30,
                   "the replica to be back in the route")
        time.sleep(0.5)
    assert load.failed == [], load.failed[:5]
    assert sum(load.answers.values()) > 200
    print(f"a replica killed under load: {sum(load.answers.values())} requests, {len(load.failed)} failed")


def batched(version: str) -> str:
    """4 replicas replaced 2 at a time; in v3, replicas 2 and 3 (the second batch) exit at once."""
    serve = ('case $$(hostname) in web-2|web-3) [ $$VERSION = v3 ] && exit 4;; esac; '
             'mkdir -p /tmp/www && echo \\"$$(hostname) $$VERSION\\" > /tmp/www/index.html && '
             "exec httpd -f -p 8000 -h /tmp/www")
    return (f"services:\n  web:\n    build: .\n    ports: ['8000']\n    environment: {{VERSION: {version}}}\n"
            f'    command: ["sh", "-c", "{serve}"]\n'
            "    deploy: {replicas: 4, update_config: {parallelism: 2}}\n")


def test_replicas_are_replaced_in_batches_and_a_failing_batch_brings_the_old_ones_back(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    host = f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", {"Dockerfile": DOCKERFILE, "docker-compose.yml": batched("v1")})
    assert server.push(repo, app_name).returncode == 0
    first = replicas(engine, app_name)
    assert sorted(first) == [0, 1, 2, 3]

    make_repo(repo, {"docker-compose.yml": batched("v2")})
    with Load(server, host, clients=4) as load:
        push = server.push(repo, app_name)
    assert "is live" in push.stderr, push.stderr
    assert "web: the route carries 2 new and 2 old containers" in push.stderr, push.stderr
    assert "Stopping web #0, #1 of release" in push.stderr and "replaced in batch 1" in push.stderr, push.stderr
    assert "replaced in batch 2" in push.stderr, push.stderr
    assert load.failed == [], load.failed[:5]
    assert set(load.answers) <= {f"{h} {v}" for h in ("web", "web-1", "web-2", "web-3") for v in ("v1", "v2")}
    second = replicas(engine, app_name)
    assert sorted(second) == [0, 1, 2, 3] and not set(second.values()) & set(first.values())

    # batch 2 of v3 fails: batch 1's v3 containers go, the v2 ones halted for it start again
    make_repo(repo, {"docker-compose.yml": batched("v3")})
    with Load(server, host, clients=4) as load:
        push = server.push(repo, app_name)
        time.sleep(1.0)
    assert "Release failed; the previous release keeps serving." in push.stderr, push.stderr
    assert "replaced in batch 1" in push.stderr and "service web exited (code 4) before it was ready" in push.stderr, \
        push.stderr
    assert load.failed == [], load.failed[:5]
    wait_until(lambda: replicas(engine, app_name) == second, 30, "the v2 replicas, all four")
    assert {server.body(host).strip().split()[1] for _ in range(8)} == {"v2"}
    print(f"batches under load: {sum(load.answers.values())} requests, {len(load.failed)} failed")
