"""Compose `build:` as people write it, pushed with git: a Dockerfile in a folder built with the
repository's root as context (and that context's .dockerignore), one multi-stage Dockerfile built
twice with two targets by two services, a build arg in the served content; an unchanged push keeps
every container; a context outside the repository is refused at push, the live release serving on."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import BASE_IMAGE, Server, make_repo

SERVE = 'EXPOSE 8000\nCMD ["httpd", "-f", "-p", "8000", "-h", "/www"]\n'

COMPOSE = """\
services:
  api:
    build: {context: ., dockerfile: api/Dockerfile}
    ports: ["8000"]
  dev:
    build: {context: site, target: dev}
    ports: ["8000"]
  prod:
    build: {context: site, target: prod}
    ports: ["8000"]
  greet:
    build:
      context: greet
      args: {GREETING: "${GREETING:-bonjour from a build arg}"}
    ports: ["8000"]
"""

FILES = {
    "docker-compose.yml": COMPOSE,
    # built with the repository's root as context: it COPYs from the root, and the root's
    # .dockerignore applies (api/.dockerignore does not: it would leave shared/ out)
    "api/Dockerfile": f"FROM {BASE_IMAGE}\nCOPY shared/message.txt /www/index.html\nCOPY . /src\n"
                      "RUN test ! -e /src/ignored.txt && test -e /src/api/Dockerfile\n" + SERVE,
    "api/.dockerignore": "shared\n",
    ".dockerignore": "ignored.txt\n",
    "ignored.txt": "left out of the context\n",
    "shared/message.txt": "api, built from the repository root\n",
    "site/Dockerfile": f"FROM {BASE_IMAGE} AS base\nRUN mkdir -p /www\n"
                       f"FROM base AS dev\nRUN echo 'the dev stage' > /www/index.html\n{SERVE}"
                       f"FROM base AS prod\nRUN echo 'the prod stage' > /www/index.html\n{SERVE}",
    "greet/Dockerfile": f"FROM {BASE_IMAGE}\nARG GREETING\nRUN mkdir -p /www && echo \"$GREETING\" > /www/index.html\n"
                        + SERVE,
}

EXPECTED = {
    "api": "api, built from the repository root\n",
    "dev": "the dev stage\n",
    "prod": "the prod stage\n",
    "greet": "bonjour from a build arg\n",
}


def host(app: str, service: str) -> str:
    return f"{app}.localhost" if service == "api" else f"{service}.{app}.localhost"  # api: the first web service


def bodies(server: Server, app: str) -> dict[str, str]:
    return {service: server.body(host(app, service)) for service in EXPECTED}


def test_compose_build_context_args_and_targets_end_to_end(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", FILES)
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    out = push.stderr
    assert "Release" in out and "is live" in out, out
    assert not [line for line in out.splitlines() if "warning:" in line and "/build" in line]
    assert bodies(server, app_name) == EXPECTED, out
    assert "Building site/Dockerfile (target dev) -> " in out and "Building site/Dockerfile (target prod) -> " in out
    assert "Building api/Dockerfile (context .) -> " in out and "Building greet/Dockerfile (args GREETING) -> " in out

    # each build is an image of its own, under a name of its own
    images = json.loads(server.cli("images", app_name, "--json").stdout)
    repositories = {i["repository"] for i in images}
    assert {f"{app_name}/api", f"{app_name}/site/dev", f"{app_name}/site/prod"} <= repositories, repositories
    assert any(r.startswith(f"{app_name}/greet/build-") for r in repositories), repositories
    assert f"{app_name}/site" not in repositories  # no service builds site/Dockerfile as it is

    # the same tree again: same builds, same names, every container kept
    make_repo(repo, {})
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    for service in EXPECTED:
        assert f"{service}: unchanged, keeping" in push.stderr, push.stderr
    assert "Starting" not in push.stderr
    assert bodies(server, app_name) == EXPECTED

    # a context outside the repository: refused at push, naming file, line and key; nothing changes
    make_repo(repo, {"docker-compose.yml": COMPOSE.replace("context: greet", "context: ../greet"),
                     "greet/Dockerfile": FILES["greet/Dockerfile"] + "LABEL changed=yes\n"})
    push = server.push(repo, app_name)
    assert push.returncode != 0
    assert ("docker-compose.yml line 13: services/greet/build/context: context '../greet' is outside the "
            "repository") in push.stderr, push.stderr
    assert "dockyard builds from the pushed repository only" in push.stderr
    assert bodies(server, app_name) == EXPECTED
