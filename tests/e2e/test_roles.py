"""Users, roles and protected environments, as people use them: a developer pushes and deploys
recette, production is protected (an admin deploys it), and every refusal says why. Real server,
real git pushes, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from tests.support import BIN, Server, make_repo, static_site


def as_user(server: Server, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The dockyard CLI run with another user's token."""
    env = {**os.environ, **server.env, "DOCKYARD_TOKEN": token}
    return subprocess.run([str(BIN / "dockyard"), *args], env=env, capture_output=True, text=True, timeout=300)


def push_as(server: Server, token: str, repo: Path, app: str, *refspecs: str) -> subprocess.CompletedProcess[str]:
    remote = f"http://dev:{token}@127.0.0.1:{server.api_port}/git/{app}.git"
    return subprocess.run(["git", "push", remote, *refspecs], cwd=repo, capture_output=True, text=True, timeout=600)


def test_a_developer_deploys_recette_and_only_an_admin_deploys_protected_production(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    dev_name, approver_name = f"dev-{app_name}", f"ann-{app_name}"
    server.cli("apps", "create", app_name)
    server.cli("envs", "create", app_name, "recette", "--branch", "develop")
    added = server.cli("users", "add", dev_name, "--role", "developer")
    dev = added.stdout.strip()
    assert dev.startswith("dy_") and "shown once" in added.stderr
    approver = server.cli("users", "add", approver_name, "--role", "approver").stdout.strip()
    users = server.cli("users", "list").stdout
    assert any(dev_name in line and "developer" in line for line in users.splitlines()), users

    assert "is protected" in server.cli("envs", "protect", app_name, "production").stdout
    listed = server.cli("envs", "list", app_name).stdout
    assert any(line.startswith("production") and "yes" in line for line in listed.splitlines()), listed

    # the developer pushes main and develop: recette deploys, protected production does not
    repo = make_repo(tmp_path / "src", static_site("v1"))
    subprocess.run(["git", "branch", "develop"], cwd=repo, check=True)
    push = push_as(server, dev, repo, app_name, "main", "develop")
    assert push.returncode == 0, push.stderr
    assert (f"production is protected: a push by {dev_name} (role developer) does not deploy it. An admin deploys "
            f"it: dockyard deploy {app_name} --env production") in push.stderr, push.stderr
    assert server.body(f"recette.{app_name}.localhost") == "v1\n"
    assert server.get(f"{app_name}.localhost").status_code != 200  # nothing released in production

    # direct deploys, rollbacks and configuration of production: refused to developers and approvers, with why
    for token, who, role in ((dev, dev_name, "developer"), (approver, approver_name, "approver")):
        for args in (("deploy", app_name), ("rollback", app_name), ("env", "set", app_name, "K=v"),
                     ("scale", app_name, "web=2")):
            refused = as_user(server, token, *args)
            assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
            assert f"the environment is protected: {who} (role {role}) may not" in refused.stderr, refused.stderr
    r = httpx.post(f"{server.url}/api/v1/apps/{app_name}/deploys", json={},
                   headers={"Authorization": f"Bearer {dev}"})
    assert r.status_code == 403 and "protected" in r.json()["error"]
    denied = [e for e in json.loads(server.cli("audit", "--app", app_name, "--json").stdout)
              if e["action"] == "access.denied"]
    assert {e["actor"] for e in denied} == {dev_name, approver_name} and len(denied) >= 9  # each refusal, audited
    assert all(e["source"] == "127.0.0.1" and "protected" in e["detail"]["reason"] for e in denied)
    # ... in recette, the developer may
    assert as_user(server, dev, "env", "set", app_name, "GREETING=hi", "--env", "recette").returncode == 0
    # ... and nobody but an admin manages users or protection
    refused = as_user(server, dev, "envs", "unprotect", app_name, "production")
    assert refused.returncode == 1 and "may not create, change or delete apps" in refused.stderr
    assert as_user(server, approver, "users", "add", "mallory", "--role", "admin").returncode == 1

    # the admin deploys production
    deployed = server.cli("deploy", app_name)
    assert "succeeded" in deployed.stdout + deployed.stderr
    assert server.body(f"{app_name}.localhost") == "v1\n"

    # unprotected again: the developer's deploy goes through
    server.cli("envs", "unprotect", app_name, "production")
    assert as_user(server, dev, "deploy", app_name).returncode == 0
    server.cli("users", "remove", dev_name)
    server.cli("users", "remove", approver_name)
    assert httpx.get(f"{server.url}/api/v1/apps", headers={"Authorization": f"Bearer {dev}"}).status_code == 401


def test_roles_change_and_the_last_admin_stays(server: Server, app_name: str) -> None:
    name = f"ops-{app_name}"
    token = server.cli("users", "add", name, "--role", "developer").stdout.strip()
    assert as_user(server, token, "users", "list").returncode == 1
    assert "now admin" in server.cli("users", "set-role", name, "admin").stdout
    assert as_user(server, token, "users", "list").returncode == 0  # the same token, the new role
    extra = server.cli("tokens", "create", f"ci-{app_name}", "--user", name).stdout.strip()
    tokens = server.cli("tokens", "list").stdout
    assert any(f"ci-{app_name}" in line and name in line and "admin" in line for line in tokens.splitlines())
    bad = server.cli("users", "set-role", name, "root", check=False)
    assert bad.returncode != 0
    server.cli("users", "remove", name)
    for t in (token, extra):  # every token of theirs went with them
        assert httpx.get(f"{server.url}/api/v1/apps", headers={"Authorization": f"Bearer {t}"}).status_code == 401
