"""What a token may do, from the outside: a push's hook token does the push's work and nothing else,
only the hook names a pusher, hosts under the base domain belong to the app of that name,
environment values stay out of answers, and host access is an admin's decision per app."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import docker
import httpx
import pytest

from dockyard.domain.model import HOST_ACCESS_KEYS
from tests.support import BIN, Server, head, jobs_of, make_repo, static_site, wait_until

HOOK_ONLY = "a push's hook token may only check its push to"


def as_token(server: Server, token: str, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30,
                         **kwargs)


def remote(server: Server, app: str, token: str) -> str:
    return f"http://someone:{token}@127.0.0.1:{server.api_port}/git/{app}.git"


def push_with(server: Server, repo: Path, app: str, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "push", remote(server, app, token), "main"], cwd=repo, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})


def hook_environments(app: str) -> list[dict[str, str]]:
    """The environments of the running processes of a push to ``app`` (git http-backend,
    receive-pack, the hooks), read from /proc as any process of the same user can."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        env = dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)
        if env.get("DOCKYARD_APP") == app and env.get("DOCKYARD_HOOK_TOKEN"):
            found.append(env)
    return found


@pytest.fixture
def pusher_token(server: Server, app_name: str) -> str:
    return server.cli("tokens", "create", f"alice-{app_name}").stdout.strip()


def test_only_the_git_hook_may_set_pusher(server: Server, app_name: str) -> None:
    server.cli("apps", "create", app_name)
    for path, body in ((f"/api/v1/apps/{app_name}/deploys", {"pusher": "mallory"}),
                       (f"/api/v1/apps/{app_name}/rejected-pushes", {"ref": "refs/heads/x", "reason": "no",
                                                                     "pusher": "mallory"})):
        r = server.api("POST", path, json=body)
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "only dockyard's git hook may set pusher"
        assert "leave 'pusher' out" in r.json()["hint"]
    assert [j for j in jobs_of(server, app_name) if j["payload"].get("actor") == "mallory"] == []
    # without pusher, the admin's requests go through and are recorded as the admin's
    r = server.api("POST", f"/api/v1/apps/{app_name}/rejected-pushes", json={"ref": "refs/heads/x", "reason": "no"})
    assert r.status_code == 201 and r.json()["payload"]["actor"] == "admin"
    r = server.api("POST", f"/api/v1/apps/{app_name}/deploys", json={})
    assert r.status_code == 400 and "nothing pushed" in r.json()["error"]


def test_a_push_records_who_pushed(server: Server, app_name: str, tmp_path: Path, pusher_token: str) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("pushed by alice"))
    push = push_with(server, repo, app_name, pusher_token)
    assert push.returncode == 0, push.stderr
    assert server.body(f"{app_name}.localhost") == "pushed by alice\n"
    deployed = jobs_of(server, app_name)[0]
    assert deployed["kind"] == "deploy" and deployed["status"] == "succeeded"
    assert deployed["payload"]["actor"] == f"alice-{app_name}"
    assert deployed["payload"]["commit"] == head(repo)

    (repo / "Dockerfile").unlink()
    make_repo(repo, {"README": "no dockerfile"})
    assert push_with(server, repo, app_name, pusher_token).returncode != 0
    refused = jobs_of(server, app_name)[0]
    assert refused["kind"] == "push" and refused["status"] == "failed"
    assert refused["payload"]["actor"] == f"alice-{app_name}"


def test_a_push_s_hook_token_does_the_push_s_work_and_nothing_else(
    server: Server, app_name: str, tmp_path: Path, pusher_token: str
) -> None:
    other = f"{app_name}-o"[:40]
    server.cli("apps", "create", app_name)
    server.cli("apps", "create", other)
    server.cli("apps", "allow", app_name, "docker_socket", "privileged")
    other_job = server.api("POST", f"/api/v1/apps/{other}/rejected-pushes",
                           json={"ref": "refs/heads/x", "reason": "test"}).json()["id"]

    files = static_site("slow")
    files["Dockerfile"] = files["Dockerfile"].replace(
        "COPY public /www", f"RUN sleep 8 && echo {uuid.uuid4().hex} > /slow\nCOPY public /www")
    repo = make_repo(tmp_path / "src", files)
    push = subprocess.Popen(["git", "push", remote(server, app_name, pusher_token), "main"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        env = wait_until(lambda: (hook_environments(app_name) or [None])[0], 60, "the push's hooks to run")
        token = env["DOCKYARD_HOOK_TOKEN"]
        job = wait_until(lambda: next((j for j in jobs_of(server, app_name) if j["status"] == "running"), None),
                         60, "the deploy to run")

        # what the push's hooks get besides the token
        assert env["DOCKYARD_PUSHER"] == f"alice-{app_name}"
        assert not {"DOCKYARD_VARIABLES", "DOCKYARD_SECRETS", "DOCKYARD_HOST_ACCESS"} & set(env)  # the server checks
        assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == "/dev/null"
        assert token != server.token and not token.startswith("dy_")

        # the push's own work
        wait_until(lambda: "Building" in as_token(server, token, "GET", f"/api/v1/jobs/{job['id']}/logs").text,
                   30, "the push's token to read its job's log")
        r = as_token(server, token, "POST", f"/api/v1/apps/{app_name}/deploys",
                     json={"commit": head(repo), "pusher": f"alice-{app_name}"})
        assert r.status_code == 202, r.text  # the deploy the hook queued already (unless it ended just now)
        assert r.json()["app"] == app_name and r.json()["payload"]["actor"] == f"alice-{app_name}"

        # nothing else
        refused = [
            ("POST", "/api/v1/tokens", {"json": {"name": f"evil-{app_name}"}}),
            ("GET", "/api/v1/tokens", {}),
            ("DELETE", "/api/v1/tokens/admin", {}),
            ("GET", "/api/v1/apps", {}),
            ("POST", "/api/v1/apps", {"json": {"name": f"{app_name}-new"[:40]}}),
            ("GET", f"/api/v1/apps/{app_name}", {}),
            ("GET", f"/api/v1/apps/{app_name}/releases", {}),
            ("GET", f"/api/v1/apps/{app_name}/logs", {}),
            ("PUT", f"/api/v1/apps/{app_name}/domains", {"json": {"domains": ["evil.example.com"]}}),
            ("PUT", f"/api/v1/apps/{app_name}/host-access", {"json": {"keys": list(HOST_ACCESS_KEYS)}}),
            ("DELETE", f"/api/v1/apps/{other}", {}),
            ("GET", "/api/v1/jobs", {}),
            ("GET", f"/api/v1/jobs/{job['id']}", {}),
            ("GET", f"/api/v1/jobs/{other_job}/logs", {}),
            ("POST", f"/api/v1/apps/{other}/deploys", {"json": {}}),
            ("POST", f"/api/v1/apps/{other}/rejected-pushes", {"json": {"ref": "refs/heads/x", "reason": "x"}}),
        ]
        for method, path, kwargs in refused:
            r = as_token(server, token, method, path, **kwargs)
            assert r.status_code == 403, (method, path, r.status_code, r.text)
            assert HOOK_ONLY in r.json()["error"] and "dockyard tokens create" in r.json()["hint"]
        r = as_token(server, token, "POST", f"/api/v1/apps/{app_name}/deploys", json={"pusher": "mallory"})
        assert r.status_code == 403 and "'mallory' is not who pushed" in r.json()["error"]
        assert push_with(server, repo, other, token).returncode != 0  # not a git password either
    finally:
        _out, err = push.communicate(timeout=300)
    assert push.returncode == 0, err

    assert f"evil-{app_name}" not in [t["name"] for t in server.api("GET", "/api/v1/tokens").json()]
    assert server.api("GET", f"/api/v1/apps/{app_name}").json()["app"]["host_access"] == ["privileged", "docker_socket"]
    assert jobs_of(server, app_name)[0]["payload"]["actor"] == f"alice-{app_name}"
    r = as_token(server, token, "GET", f"/api/v1/jobs/{job['id']}/logs")
    assert r.status_code == 401 and "hook token" in r.json()["error"]  # revoked when the push ended
    assert hook_environments(app_name) == []


def test_hosts_under_the_base_domain_belong_to_the_app_of_that_name(server: Server, app_name: str) -> None:
    future = f"{app_name}-f"[:40]
    server.cli("apps", "create", app_name)
    for domain in (f"{future}.localhost", f"www.{future}.localhost"):
        proc = server.cli("domains", "add", app_name, domain, check=False)
        assert proc.returncode == 1
        assert f"{domain} is reserved for app {future}: hosts under {future}.localhost belong" in proc.stderr
        assert f"give {app_name} a domain under {app_name}.localhost" in proc.stderr
    r = server.api("POST", "/api/v1/apps", json={"name": f"{app_name}-g"[:40], "domains": [f"{future}.localhost"]})
    assert r.status_code == 409 and "is reserved for app" in r.json()["error"]
    assert server.cli("domains", "add", app_name, f"www.{app_name}.localhost").stdout.split() == [
        f"www.{app_name}.localhost"]
    server.cli("apps", "create", future)  # its hosts were waiting for it
    assert server.cli("domains", "add", future, f"api.{future}.localhost").returncode == 0
    proc = server.cli("domains", "add", future, f"x.www.{app_name}.localhost", check=False)
    assert proc.returncode == 1 and f"already routes to app {app_name}" in proc.stderr


@pytest.mark.parametrize("domain", ["127.0.0.1", "10.1.2.3", "127.1", "shop.example.123", "[::1]", "::1",
                                    "2001:db8::1", "[::ffff:127.0.0.1]"])
def test_ip_literals_are_not_domains(server: Server, app_name: str, domain: str) -> None:
    server.cli("apps", "create", app_name)
    proc = server.cli("domains", "add", app_name, domain, check=False)
    assert proc.returncode == 1 and "an IP address is not a domain" in proc.stderr and "hint:" in proc.stderr
    r = server.api("PUT", f"/api/v1/apps/{app_name}/domains", json={"domains": [domain]})
    assert r.status_code == 400 and "an IP address is not a domain" in r.json()["error"]
    assert server.api("GET", f"/api/v1/apps/{app_name}").json()["app"]["domains"] == []


def test_environment_values_are_redacted_in_answers(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    server.cli("apps", "create", app_name)
    files = static_site("env")
    files["docker-compose.yml"] = (
        "services:\n  web:\n    build: .\n    ports:\n      - '8000'\n    environment:\n"
        f"      API_KEY: {secret}\n      MODE: production\n"
    )
    push = server.push(make_repo(tmp_path / "src", files), app_name)
    assert push.returncode == 0, push.stderr

    status = server.api("GET", f"/api/v1/apps/{app_name}")
    releases = server.api("GET", f"/api/v1/apps/{app_name}/releases")
    cli = server.cli("status", app_name, "--json").stdout + server.cli("releases", app_name, "--json").stdout
    for text in (status.text, releases.text, cli):
        assert secret not in text
    web = status.json()["live_release"]["services"][0]
    assert web["environment"] == [["API_KEY", "<redacted>"], ["MODE", "<redacted>"]]
    assert releases.json()[0]["services"][0]["environment"] == [["API_KEY", "<redacted>"], ["MODE", "<redacted>"]]
    # the store keeps the values: the container got them, and a redeploy keeps them
    running = [c for c in status.json()["containers"] if c["state"] == "running"]
    assert f"API_KEY={secret}" in engine.containers.get(running[0]["id"]).attrs["Config"]["Env"]
    assert "unchanged, keeping" in server.cli("deploy", app_name).stdout


def test_host_access_is_allowed_per_app_by_an_admin(server: Server, app_name: str) -> None:
    server.cli("apps", "create", app_name)
    assert server.api("GET", f"/api/v1/apps/{app_name}").json()["app"]["host_access"] == []
    out = server.cli("apps", "allow", app_name, "privileged", "bind_mounts").stdout
    assert out.strip() == f"{app_name} may use: privileged, bind_mounts"
    out = server.cli("apps", "allow", app_name, "privileged", "cap_add").stdout
    assert out.strip() == f"{app_name} may use: privileged, cap_add, bind_mounts"
    assert server.cli("apps", "deny", app_name, "privileged").stdout.strip() == f"{app_name} may use: cap_add, bind_mounts"
    listed = next(a for a in server.api("GET", "/api/v1/apps").json() if a["name"] == app_name)
    assert listed["host_access"] == ["cap_add", "bind_mounts"]

    for keys in (["volumes"], ["privileged", "Privileged"]):
        r = server.api("PUT", f"/api/v1/apps/{app_name}/host-access", json={"keys": keys})
        assert r.status_code == 400 and r.json()["error"].startswith("unknown host access key")
        assert all(k in r.json()["hint"] for k in HOST_ACCESS_KEYS)
    for command in ("allow", "deny"):
        proc = server.cli("apps", command, app_name, "root", check=False)
        assert proc.returncode == 1 and "unknown host access key 'root'" in proc.stderr
    assert server.cli("apps", "deny", app_name, "cap_add", "bind_mounts").stdout.strip() == (
        f"{app_name} may use: (no host access)")
    r = server.api("PUT", "/api/v1/apps/no-such-app/host-access", json={"keys": []})
    assert r.status_code == 404


def test_host_access_commands_explain_each_key() -> None:
    for command in ("allow", "deny"):
        out = subprocess.run([str(BIN / "dockyard"), "apps", command, "--help"], capture_output=True, text=True,
                             timeout=30, env={**os.environ, "COLUMNS": "200"})
        assert out.returncode == 0
        for key in HOST_ACCESS_KEYS:
            assert f"{key}:" in out.stdout, (key, out.stdout)
    assert "root on the host" in out.stdout and "control of every container" in out.stdout


def test_openapi_schema_lists_host_access(server: Server) -> None:
    schema = httpx.get(f"{server.url}/openapi.json").json()
    route = schema["paths"]["/api/v1/apps/{name}/host-access"]["put"]
    assert route["tags"] == ["apps"] and "403" in route["responses"]


def test_pushing_with_a_revoked_token_fails(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    token = server.cli("tokens", "create", f"gone-{app_name}").stdout.strip()
    server.cli("tokens", "revoke", f"gone-{app_name}")
    push = push_with(server, make_repo(tmp_path / "src", static_site("x")), app_name, token)
    assert push.returncode != 0 and "Authentication failed" in push.stderr
    assert jobs_of(server, app_name) == []
