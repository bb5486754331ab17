"""A repo with a compose file starts its services on the app's own network; every capability is
in the CLI (with --help) and in the OpenAPI schema."""

from __future__ import annotations

import subprocess
from pathlib import Path

import docker
import httpx
import pytest

from tests.support import BASE_IMAGE, BIN, Server, free_port, make_repo


def test_compose_services_share_the_app_network(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    server.cli("apps", "create", app_name)
    port = free_port()  # published on this host: a port of its own, never a fixed one other stacks may want
    files = {
        "Dockerfile": f"FROM {BASE_IMAGE}\nCOPY web /www\nEXPOSE 8000\n"
        'CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]\n',
        "web/index.html": "front\n",
        "web/cgi-bin/api": "#!/bin/sh\necho 'Content-Type: text/plain'\necho\nwget -q -O - http://api:9000/\n",
        "Dockerfile-api": f"FROM {BASE_IMAGE}\nCOPY api /www\nEXPOSE 9000\n"
        'CMD ["httpd", "-f", "-p", "9000", "-h", "/www"]\n',
        "api/index.html": "from the api service, env=${GREETING}\n",
        "app.env": "GREETING=hello-from-env-file\n",
        "docker-compose.yml": (
            "version: '2'\nservices:\n"
            f"  web:\n    build: .\n    ports:\n      - '{port}:8000'\n    env_file:\n      - app.env\n"
            "    depends_on:\n      - api\n"
            "  api:\n    build:\n      context: .\n      dockerfile: Dockerfile-api\n"
        ),
    }
    repo = make_repo(tmp_path / "src", files)
    (repo / "web/cgi-bin/api").chmod(0o755)
    subprocess.run(["git", "add", "--chmod=+x", "web/cgi-bin/api"], cwd=repo, check=True)
    make_repo(repo, {})
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    assert push.stderr.index("Starting api") < push.stderr.index("Starting web")
    assert server.body(f"{app_name}.localhost") == "front\n"
    assert server.body(f"{app_name}.localhost", "/cgi-bin/api").startswith("from the api service")
    status = server.api("GET", f"/api/v1/apps/{app_name}").json()
    assert sorted(c["service"] for c in status["containers"]) == ["api", "web"]
    web = next(s for s in status["live_release"]["services"] if s["name"] == "web")
    assert ["GREETING", "<redacted>"] in web["environment"]  # values stay out of answers
    container = next(c for c in status["containers"] if c["service"] == "web" and c["state"] == "running")
    assert "GREETING=hello-from-env-file" in engine.containers.get(container["id"]).attrs["Config"]["Env"]
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "front\n"  # the published port, via the proxy


def test_bad_compose_file_is_rejected(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    files = {
        "Dockerfile": f"FROM {BASE_IMAGE}\nEXPOSE 8000\n",
        "docker-compose.yml": "services:\n  web:\n    build: .\n    depends_on: [db]\n",
    }
    push = server.push(make_repo(tmp_path / "src", files), app_name)
    assert push.returncode != 0
    assert "docker-compose.yml line 4: services/web/depends_on: unknown service 'db'" in push.stderr


@pytest.mark.parametrize(
    "command",
    [[], ["apps"], ["apps", "create"], ["apps", "delete"], ["status"], ["logs"], ["images"], ["releases"],
     ["deploy"], ["jobs"], ["jobs", "show"], ["domains", "add"], ["tokens", "create"], ["server"], ["server", "down"], ["login"],
     ["system"], ["apps", "allow"], ["apps", "deny"], ["rollback"], ["plan"], ["scale"], ["users"],
     ["users", "add"], ["users", "set-role"], ["users", "remove"], ["envs", "protect"], ["envs", "unprotect"],
     ["audit"], ["webhooks"], ["webhooks", "add"], ["webhooks", "deliveries"], ["webhooks", "ping"],
     ["approvals"], ["approve"], ["reject"], ["releases"]],
)
def test_every_command_has_help(command: list[str]) -> None:
    out = subprocess.run([str(BIN / "dockyard"), *command, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Usage:" in out.stdout


def test_openapi_schema_lists_the_routes(server: Server) -> None:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    for path in ["/api/v1/apps", "/api/v1/apps/{name}", "/api/v1/apps/{name}/deploys", "/api/v1/apps/{name}/images",
                 "/api/v1/apps/{name}/logs", "/api/v1/apps/{name}/releases", "/api/v1/apps/{name}/domains",
                 "/api/v1/jobs/{job_id}/logs", "/api/v1/tokens", "/api/v1/system", "/api/v1/health",
                 "/git/{repo}/{path}", "/api/v1/users", "/api/v1/users/{user}/role",
                 "/api/v1/apps/{name}/environments/{env}/protection", "/api/v1/audit", "/api/v1/audit/verify",
                 "/api/v1/apps/{name}/webhooks", "/api/v1/approvals",
                 "/api/v1/apps/{name}/environments/{env}/candidates/{release}/approve"]:
        assert path in paths


def test_domains_tokens_and_delete(server: Server, app_name: str, tmp_path: Path) -> None:
    from tests.support import static_site

    server.cli("apps", "create", app_name)
    assert "shop.example.com" in server.cli("domains", "add", app_name, "shop.example.com").stdout
    bad = server.cli("domains", "add", app_name, "bad domain;x", check=False)
    assert bad.returncode == 1 and "invalid domain" in bad.stderr
    repo = make_repo(tmp_path / "src", static_site("by domain"))
    assert server.push(repo, app_name).returncode == 0
    assert server.body("shop.example.com") == "by domain\n"

    token = server.cli("tokens", "create", f"ci-{app_name}").stdout.strip()
    r = httpx.get(f"{server.url}/api/v1/apps", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    server.cli("tokens", "revoke", f"ci-{app_name}")
    r = httpx.get(f"{server.url}/api/v1/apps", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401

    server.cli("apps", "delete", app_name, "--yes")
    assert server.get(f"{app_name}.localhost").status_code == 404
    assert app_name not in server.cli("apps").stdout


def test_an_app_is_not_deleted_while_it_deploys(server: Server, app_name: str, tmp_path: Path) -> None:
    from tests.support import slow_push

    server.cli("apps", "create", app_name)
    with slow_push(server, app_name, tmp_path / "src", "slow"):
        refused = server.cli("apps", "delete", app_name, "--yes", check=False)
        assert refused.returncode == 1 and "deploy job running" in refused.stderr
    assert server.body(f"{app_name}.localhost") == "slow\n"
    server.cli("apps", "delete", app_name, "--yes")
    assert server.get(f"{app_name}.localhost").status_code == 404
