"""Compose ``secrets:`` from the outside: a two-service stack where only ``api`` lists ``token``.
``api`` gets /run/secrets/token and $token, ``web`` neither; a new version of ``token`` replaces
``api``'s container and keeps ``web``'s; a secret the stack lists but the environment lacks is
refused with the command that sets it; a ``file:`` secret is refused at push while the running
release serves on; and the value shows nowhere it should not."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.e2e.test_variables_and_secrets import cli_with_input, leaks
from tests.support import Server, make_repo, static_site

CMD = ('CMD ["sh", "-c", "env > /www/env.txt; (cat /run/secrets/token || echo none) > /www/secret.txt; '
       '(ls /run/secrets || true) > /www/files.txt 2>&1; exec httpd -f -p 8000 -h /www"]\n')

COMPOSE = """\
services:
  web:
    build: .
    ports: ["8000"]
  api:
    build: .
    ports: ["8000"]
    secrets:
      - token
      - source: token
        target: /run/secrets/api_key
secrets:
  token:
    external: true
"""


def site() -> dict[str, str]:
    files = static_site("scoped secrets")
    files["Dockerfile"] = files["Dockerfile"].replace('CMD ["httpd", "-f", "-v", "-p", "8000", "-h", "/www"]\n', CMD)
    assert CMD in files["Dockerfile"]
    return {**files, "docker-compose.yml": COMPOSE}


def containers(server: Server, app: str) -> dict[str, str]:
    status = server.api("GET", f"/api/v1/apps/{app}").json()
    return {c["service"]: c["id"] for c in status["containers"] if c["state"] == "running"}


def test_only_the_services_that_list_a_secret_receive_it_and_restart_with_it(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    web_host, api_host = f"{app_name}.localhost", f"api.{app_name}.localhost"
    first, second = f"scoped1-{uuid.uuid4().hex}", f"scoped2-{uuid.uuid4().hex}"
    server.cli("apps", "create", app_name)
    cli_with_input(server, "an-unlisted-value\n", "secrets", "set", app_name, "other")

    # the stack lists a secret the environment does not have: refused, with the command that sets it
    repo = make_repo(tmp_path / "src", site())
    unset = server.push(repo, app_name)
    hint = f"dockyard secrets set {app_name} token --env production"
    assert unset.returncode != 0 and "Push rejected" in unset.stderr  # at pre-receive: before any build
    assert "the compose file gives the secret token to api" in unset.stderr and hint in unset.stderr, unset.stderr
    assert containers(server, app_name) == {}
    assert server.push(repo, app_name, "main:feature").returncode == 0  # a branch that deploys nowhere
    planned = server.cli("plan", app_name, "--branch", "feature", check=False)
    assert planned.returncode != 0 and hint in planned.stdout + planned.stderr

    cli_with_input(server, first + "\n", "secrets", "set", app_name, "token")
    pushed = server.push(repo, app_name)
    assert pushed.returncode == 0 and "is live" in pushed.stderr, pushed.stderr
    assert server.body(api_host, "/secret.txt") == first
    assert server.body(api_host, "/files.txt").split() == ["api_key", "token"]
    api_env = server.body(api_host, "/env.txt").splitlines()
    assert f"token={first}" in api_env and not any(line.startswith("other=") for line in api_env)
    assert server.body(web_host, "/secret.txt") == "none\n"
    assert "token" not in server.body(web_host, "/files.txt")
    web_env = server.body(web_host, "/env.txt").splitlines()
    assert not any(line.startswith(("token=", "other=")) for line in web_env), web_env
    before = containers(server, app_name)
    assert set(before) == {"api", "web"}

    # a new version: api is replaced, web kept
    cli_with_input(server, second + "\n", "secrets", "set", app_name, "token")
    deployed = server.cli("deploy", app_name).stdout
    assert f"web: unchanged, keeping {before['web'][:12]}" in deployed, deployed
    assert "api: unchanged" not in deployed
    after = containers(server, app_name)
    assert after["web"] == before["web"] and after["api"] != before["api"]
    assert server.body(api_host, "/secret.txt") == second
    assert server.body(web_host, "/secret.txt") == "none\n"

    # a secret from a file of the repository: refused at push, the release serves on
    live = server.api("GET", f"/api/v1/apps/{app_name}").json()["live_release"]["id"]
    make_repo(repo, {"token.txt": "committed\n", "docker-compose.yml": COMPOSE.replace(
        "    external: true\n", "    file: ./token.txt\n")})
    refused = server.push(repo, app_name)
    assert refused.returncode != 0
    assert "docker-compose.yml line 14: secrets/token/file: a secret's value is not read from a file of the " \
           "repository" in refused.stderr, refused.stderr
    assert "a value committed to the repository is not secret" in refused.stderr
    assert "dockyard secrets set APP token --env ENV" in refused.stderr
    assert server.api("GET", f"/api/v1/apps/{app_name}").json()["live_release"]["id"] == live
    assert containers(server, app_name) == after
    assert server.body(api_host, "/secret.txt") == second

    pushes = [p.stdout + p.stderr for p in (unset, refused)]
    assert leaks(server, app_name, [first, second, "an-unlisted-value"], pushes) == []
