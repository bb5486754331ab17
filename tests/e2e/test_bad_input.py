"""Bad input gets a clear error in the git push output and the API, and changes nothing: the
running release keeps serving and nothing user-supplied reaches a shell."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import Server, jobs_of, make_repo, static_site


@pytest.fixture
def live_app(server: Server, app_name: str, tmp_path: Path) -> tuple[str, Path]:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("good"))
    assert server.push(repo, app_name).returncode == 0
    assert server.body(f"{app_name}.localhost") == "good\n"
    return app_name, repo


def assert_unchanged(server: Server, app: str) -> None:
    assert server.body(f"{app}.localhost") == "good\n"
    releases = server.api("GET", f"/api/v1/apps/{app}/releases").json()
    assert [r["status"] for r in releases] == ["live"]


def test_push_without_dockerfile_is_rejected(server: Server, live_app: tuple[str, Path]) -> None:
    app, repo = live_app
    (repo / "Dockerfile").unlink()
    make_repo(repo, {"README": "no dockerfile here"})
    push = server.push(repo, app)
    assert push.returncode != 0
    assert "remote:  !     Push rejected: no Dockerfile found in the pushed commit" in push.stderr
    assert "add a Dockerfile" in push.stderr
    assert_unchanged(server, app)
    rejected = jobs_of(server, app)[0]
    assert rejected["kind"] == "push" and rejected["status"] == "failed"
    assert "no Dockerfile" in rejected["error"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("# VERSION\n", "malformed VERSION header"),
        ("# VERSION 1.0 beta\n", "malformed VERSION header"),
        ("# dockyard.test/Demo/UPPER\n", "is not a valid image reference"),
        ("# dockyard.test/demo/site:1.0\n", "carries a tag"),
    ],
)
def test_malformed_header_is_rejected(server: Server, live_app: tuple[str, Path], header: str, expected: str) -> None:
    app, repo = live_app
    files = static_site("bad header", version=None)
    files["Dockerfile"] = header + files["Dockerfile"]
    make_repo(repo, files)
    push = server.push(repo, app)
    assert push.returncode != 0
    assert "Push rejected: Dockerfile line 1" in push.stderr and expected in push.stderr
    assert_unchanged(server, app)


def test_dockerfile_without_expose_is_rejected(server: Server, live_app: tuple[str, Path]) -> None:
    app, repo = live_app
    files = static_site("no port")
    files["Dockerfile"] = files["Dockerfile"].replace("EXPOSE 8000\n", "")
    make_repo(repo, files)
    push = server.push(repo, app)
    assert push.returncode != 0 and "exposes no port" in push.stderr and "EXPOSE" in push.stderr
    assert_unchanged(server, app)


@pytest.mark.parametrize("branch", ["x;touch${IFS}/tmp/dy-pwned", "a$(id)", "back`id`tick", "p|q", "a&b"])
def test_branch_with_shell_characters_is_rejected(
    server: Server, live_app: tuple[str, Path], branch: str
) -> None:
    app, repo = live_app
    push = server.push(repo, app, f"main:refs/heads/{branch}")
    assert push.returncode != 0
    assert "Push rejected: invalid branch name" in push.stderr
    assert not os.path.exists("/tmp/dy-pwned")
    heads = server.api("GET", f"/api/v1/apps/{app}").json()
    assert heads["live_release"] is not None
    assert_unchanged(server, app)


def test_other_branches_are_stored_not_deployed(server: Server, live_app: tuple[str, Path]) -> None:
    app, repo = live_app
    make_repo(repo, static_site("feature work", version="9.9"))
    push = server.push(repo, app, "HEAD:refs/heads/feature/x")
    assert push.returncode == 0
    assert "feature/x stored" in push.stderr
    assert_unchanged(server, app)


def test_oversized_push_is_rejected(server: Server, live_app: tuple[str, Path]) -> None:
    app, repo = live_app
    (repo / "public").mkdir(exist_ok=True)
    (repo / "public" / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))  # the test server allows 3 MiB
    make_repo(repo, {})
    push = server.push(repo, app)
    assert push.returncode != 0
    assert "pack exceeds maximum allowed size" in push.stderr or "too large" in push.stderr
    assert_unchanged(server, app)


@pytest.mark.parametrize("name", ["../etc", "my app", "a;rm -rf /", "$(id)", "UPPER", "-lead", "trail-", "x" * 41])
def test_bad_app_names_are_refused(server: Server, name: str) -> None:
    proc = server.cli("apps", "create", "--", name, check=False)
    assert proc.returncode == 1
    assert "invalid app name" in proc.stderr and "hint:" in proc.stderr
    r = server.api("POST", "/api/v1/apps", json={"name": name})
    assert r.status_code == 400 and "invalid app name" in r.json()["error"]
    assert name not in [a["name"] for a in server.api("GET", "/api/v1/apps").json()]


def test_push_to_unknown_app_or_without_token_fails(server: Server, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "src", static_site("x"))
    push = server.push(repo, "no-such-app")
    assert push.returncode != 0
    bad = subprocess_push(repo, f"http://dockyard:wrong@127.0.0.1:{server.api_port}/git/no-such-app.git")
    assert bad.returncode != 0 and "Authentication failed" in bad.stderr


def test_api_requires_a_token(server: Server) -> None:
    import httpx

    r = httpx.get(f"{server.url}/api/v1/apps")
    assert r.status_code == 401 and "missing token" in r.json()["error"]
    r = httpx.get(f"{server.url}/api/v1/apps", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid token" in r.json()["error"]


def subprocess_push(repo: Path, remote: str):
    import subprocess

    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", "push", remote, "main"], cwd=repo, capture_output=True, text=True, env=env,
                          timeout=60)


def test_names_cannot_reach_other_routes(server: Server) -> None:
    """'../tokens/admin' is an (invalid) app name, never a path to another endpoint."""
    proc = server.cli("apps", "delete", "../tokens/admin", "--yes", check=False)
    assert proc.returncode == 1
    assert server.api("GET", "/api/v1/tokens").status_code == 200  # the admin token still works
    assert "admin" in [t["name"] for t in server.api("GET", "/api/v1/tokens").json()]


def test_a_domain_cannot_be_taken_from_another_app(server: Server, live_app: tuple[str, Path]) -> None:
    app, _ = live_app
    other = f"{app}-x"[:40]
    server.cli("apps", "create", other)
    for domain in (f"{app}.localhost", f"web.{app}.localhost"):
        proc = server.cli("domains", "add", other, domain, check=False)
        assert proc.returncode == 1 and f"already routes to app {app}" in proc.stderr
    assert_unchanged(server, app)
