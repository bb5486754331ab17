"""Environments, from the outside: one stack in recette and production at once on one host, each
deployed by pushes to its own branch, with its own variables and a secret that shows nowhere;
`--env` on deploy, status, releases, logs and images; one environment deploys while the other
is in the middle of a deploy; removing recette leaves production serving."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from tests.e2e.test_variables_and_secrets import cli_with_input, leaks, site
from tests.support import Server, git, jobs_of, make_repo, static_site, wait_until


def env_lines(server: Server, host: str) -> list[str]:
    return server.body(host, "/env.txt").splitlines()


def test_recette_and_production_run_one_stack_side_by_side(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    prod_host, recette_host = f"{app_name}.localhost", f"recette.{app_name}.localhost"
    token = f"recette-{uuid.uuid4().hex}"
    server.cli("apps", "create", app_name)
    out = server.cli("envs", "create", app_name, "recette", "--branch", "develop").stdout
    assert f"it will answer at {recette_host}" in out and "deployed by pushes to develop" in out
    listed = server.cli("envs", "list", app_name).stdout
    assert listed.splitlines()[1].split()[:3] == ["production", "local", "main"]
    assert listed.splitlines()[2].split()[:3] == ["recette", "local", "develop"]
    server.cli("env", "set", app_name, "MODE=production", "DB=crigen")
    server.cli("env", "set", app_name, "MODE=recette", "DB=crigen_recette", "--env", "recette")
    cli_with_input(server, token + "\n", "secrets", "set", app_name, "token", "--env", "recette")
    cli_with_input(server, "prod-token-value\n", "secrets", "set", app_name, "token")

    repo = make_repo(tmp_path / "src", site("one stack"))
    git(repo, "branch", "develop")
    pushed = server.push(repo, app_name, "main")
    assert pushed.returncode == 0, pushed.stderr
    assert "to recette" not in pushed.stderr
    pushed_develop = server.push(repo, app_name, "develop")
    assert pushed_develop.returncode == 0, pushed_develop.stderr
    assert "to recette" in pushed_develop.stderr and "is live in recette" in pushed_develop.stderr

    # each serves, with its own values
    prod_env, recette_env = env_lines(server, prod_host), env_lines(server, recette_host)
    assert "MODE=production" in prod_env and "DB=crigen" in prod_env
    assert "MODE=recette" in recette_env and "DB=crigen_recette" in recette_env
    assert server.body(recette_host, "/secret.txt") == token
    assert server.body(prod_host, "/secret.txt") == "prod-token-value"
    status = server.cli("status", app_name, "--env", "recette").stdout
    assert "env      recette on local, deployed by pushes to develop" in status
    assert f"http://{recette_host}:{server.proxy_port}/" in status
    containers = server.api("GET", f"/api/v1/apps/{app_name}/environments/recette").json()["containers"]
    assert [c["environment"] for c in containers] == ["recette"]
    recette_net = engine.containers.get(containers[0]["id"]).attrs["NetworkSettings"]["Networks"]
    assert list(recette_net) == [f"{server.env['DOCKYARD_NAME_PREFIX']}-{server.installation}-{app_name}--recette"]

    releases = server.cli("releases", app_name, "--env", "recette").stdout.splitlines()
    assert len(releases) == 2 and releases[1].split()[1:3] == ["recette", "live"]
    assert len(server.cli("releases", app_name).stdout.splitlines()) == 3  # both environments'
    images = server.cli("images", app_name, "--env", "recette").stdout
    assert "production,recette" in images  # one commit, one image: both run it
    again = server.cli("deploy", app_name, "--env", "recette").stdout  # again, on demand
    assert "(recette)" in again and "web: unchanged" in again

    # the recette secret is nowhere but in its container
    assert leaks(server, app_name, [token], [pushed.stdout + pushed.stderr,
                                            pushed_develop.stdout + pushed_develop.stderr],
                 envs=("production", "recette")) == []

    # removed: its containers and network go, production keeps serving, the volume list stays readable
    out = server.cli("envs", "remove", app_name, "recette", "--yes").stdout
    assert "its volumes stay" in out
    assert server.body(recette_host) in ("<404>", "<502>") or server.body(recette_host).startswith("<")
    assert "MODE=production" in env_lines(server, prod_host)
    assert [c for c in engine.containers.list(all=True, filters={"label": f"dockyard.app={app_name}"})
            if c.labels.get("dockyard.environment") == "recette"] == []
    gone = server.cli("status", app_name, "--env", "recette", check=False)
    assert gone.returncode == 1 and "no environment 'recette'" in gone.stderr


def test_one_environment_deploys_while_the_other_is_in_the_middle_of_a_deploy(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    server.cli("apps", "create", app_name)
    server.cli("envs", "create", app_name, "recette", "--branch", "develop")
    repo = make_repo(tmp_path / "src", static_site("v1"))
    git(repo, "branch", "develop")
    assert server.push(repo, app_name, "main").returncode == 0
    # recette's build takes a while; production's push goes through meanwhile
    slow = static_site("slow recette")
    slow["Dockerfile"] = slow["Dockerfile"].replace(
        "COPY public /www", f"RUN sleep 10 && echo {uuid.uuid4().hex} > /slow\nCOPY public /www")
    git(repo, "checkout", "-q", "develop")
    for path, text in slow.items():
        (repo / path).write_text(text)
    git(repo, "commit", "-qam", "slow")
    recette_push = subprocess.Popen(["git", "push", server.remote(app_name), "develop"], cwd=repo,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: any(j["status"] == "running" and j["environment"] == "recette"
                               for j in jobs_of(server, app_name)), 60, "recette's deploy to run")
        git(repo, "checkout", "-q", "main")
        (repo / "public/index.html").write_text("v2\n")
        git(repo, "commit", "-qam", "v2")
        fast = server.push(repo, app_name, "main")
        assert fast.returncode == 0, fast.stderr
        assert server.body(f"{app_name}.localhost") == "v2\n"
    finally:
        _out, err = recette_push.communicate(timeout=300)
    assert recette_push.returncode == 0, err
    assert server.body(f"recette.{app_name}.localhost") == "slow recette\n", err
    recette, production = (next(j for j in jobs_of(server, app_name) if j["environment"] == env)
                           for env in ("recette", "production"))
    # production's deploy started while recette's ran (recette's build alone takes 10 s): they overlapped
    assert recette["started_at"] < production["started_at"] < recette["finished_at"], jobs_of(server, app_name)
    # each environment's logs are its own containers' (httpd -v logs each answer's status)
    assert server.get(f"recette.{app_name}.localhost", "/only-in-recette").status_code == 404
    wait_until(lambda: "response:404" in server.cli("logs", app_name, "--env", "recette").stdout, 20,
               "recette's 404 in its logs")
    production_logs = server.cli("logs", app_name).stdout
    assert "response:200" in production_logs and "response:404" not in production_logs


@pytest.mark.parametrize("command", [["envs"], ["envs", "list"], ["envs", "create"], ["envs", "remove"], ["envs", "set-branch"],
                                     ["deploy"], ["status"], ["releases"], ["logs"], ["images"]])
def test_environment_commands_have_help(server: Server, command: list[str]) -> None:
    out = server.cli(*command, "--help").stdout
    assert "Usage" in out and ("--env" in out or command[0] == "envs")


def test_openapi_lists_the_environment_routes(server: Server) -> None:
    import httpx

    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    base = "/api/v1/apps/{name}/environments"
    for path, method in [(base, "get"), (base, "post"), (f"{base}/{{env}}", "get"), (f"{base}/{{env}}", "delete"),
                         (f"{base}/{{env}}/branch", "put"), (f"{base}/{{env}}/deploys", "post"),
                         (f"{base}/{{env}}/releases", "get"), (f"{base}/{{env}}/images", "get"),
                         (f"{base}/{{env}}/logs", "get"), (f"{base}/{{env}}/plan", "get"),
                         (f"{base}/{{env}}/rollbacks", "post"), (f"{base}/{{env}}/scale", "post"),
                         (f"{base}/{{env}}/release/{{action}}", "post")]:
        assert method in paths.get(path, {}), (path, method)


def test_bad_environment_input_is_refused_and_changes_nothing(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    assert server.push(make_repo(tmp_path / "src", static_site("steady")), app_name).returncode == 0
    for args, message in [
        (["envs", "create", app_name, "Recette"], "invalid environment name 'Recette'"),
        (["envs", "create", app_name, "re--cette"], "invalid environment name"),
        (["envs", "create", app_name, "qa", "--target", "swarm-eu"], "unknown target 'swarm-eu'"),
        (["envs", "create", app_name, "qa", "--branch", "a..b"], "invalid branch name"),
        (["envs", "create", app_name, "production"], "has an environment named 'production' already"),
        (["envs", "remove", app_name, "production", "--yes"], "production cannot be removed"),
        (["deploy", app_name, "--env", "nope"], "has no environment 'nope'"),
        (["status", app_name, "--env", "Re cette"], "invalid environment name"),
        (["status", app_name, "--env", "../tokens"], "Not Found"),  # one path segment: no other route
    ]:
        proc = server.cli(*args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
    server.cli("envs", "create", app_name, "qa")
    on_demand = server.cli("deploy", app_name, "--env", "qa", check=False)
    assert on_demand.returncode == 1 and "deploys from no branch" in on_demand.stderr
    assert server.body(f"{app_name}.localhost") == "steady\n"
    assert [e["name"] for e in server.api("GET", f"/api/v1/apps/{app_name}/environments").json()] == [
        "production", "qa"]


def test_dockyard_yml_declares_an_environment_its_variables_and_secrets(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    recette = f"recette.{app_name}.localhost"
    declared = ("environments:\n"
                "  production:\n    variables: {MODE: production}\n"
                "  recette:\n    branch: develop\n    variables: {MODE: recette}\n    secrets: [token]\n")
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", {**site("declared"), "dockyard.yml": declared})
    assert server.push(repo, app_name, "main").returncode == 0
    assert "MODE=production" in env_lines(server, f"{app_name}.localhost")

    # develop: recette is declared, but its secret is not set: refused at push, nothing added
    git(repo, "branch", "develop")
    refused = server.push(repo, app_name, "develop")
    assert refused.returncode != 0
    assert "environment recette needs the secret(s) token, which are not set" in refused.stderr
    assert "dockyard secrets set APP token --env recette" in refused.stderr
    assert [e["name"] for e in server.api("GET", f"/api/v1/apps/{app_name}/environments").json()] == ["production"]

    cli_with_input(server, "s3cret-value\n", "secrets", "set", app_name, "token", "--env", "recette")
    pushed = server.push(repo, app_name, "develop")
    assert pushed.returncode == 0, pushed.stderr
    assert "recette: added, as dockyard.yml declares (target local, branch develop)" in pushed.stderr
    assert "MODE=recette" in env_lines(server, recette)
    assert server.body(recette, "/secret.txt") == "s3cret-value"

    # the CLI sets MODE to another value: a conflict, reported by plan and refused at push
    server.cli("env", "set", app_name, "MODE=other", "--env", "recette")
    plan = server.cli("plan", app_name, "--env", "recette", check=False)
    assert plan.returncode == 1 and "MODE" in plan.stderr and "one place" in plan.stderr
    git(repo, "checkout", "-q", "develop")
    (repo / "public/index.html").write_text("declared 2\n")
    git(repo, "commit", "-qam", "two")
    conflict = server.push(repo, app_name, "develop")
    assert conflict.returncode != 0 and "MODE" in conflict.stderr
    assert "MODE=recette" in env_lines(server, recette)  # recette keeps serving what it ran

    # made to agree; the commit pushed to a branch that deploys nowhere: the plan shows the
    # change and changes nothing, the deploy applies it
    server.cli("env", "unset", app_name, "MODE", "--env", "recette")
    assert server.push(repo, app_name, "develop:feature").returncode == 0
    shown = server.cli("plan", app_name, "--env", "recette", "--branch", "feature").stdout
    assert "~ web: replace" in shown and "built from Dockerfile at" in shown and "1 to replace" in shown
    as_json = json.loads(server.cli("plan", app_name, "--env", "recette", "--branch", "feature", "--json").stdout)
    assert as_json["changes"][0]["service"] == "web" and as_json["live_release"] is not None
    assert server.body(recette) == "declared\n"  # the plan changed nothing
    server.cli("deploy", app_name, "--env", "recette", "--branch", "feature")
    assert server.body(recette) == "declared 2\n"
    kept = server.cli("plan", app_name, "--env", "recette", "--branch", "feature").stdout
    assert "= web: keep" in kept
