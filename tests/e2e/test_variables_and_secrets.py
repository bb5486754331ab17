"""Variables and secrets, from the outside: set with the CLI (a secret from stdin or a file, never
argv), handed to a live container as environment variables and as /run/secrets/NAME, and found
nowhere else: not in any API answer, CLI output, push output, database cell or file of
DOCKYARD_HOME but the key file. A new version restarts the service; no change keeps it."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import uuid
from pathlib import Path

import docker
import httpx
import pytest

from tests.support import BIN, Server, jobs_of, make_repo, static_site

CMD = ('CMD ["sh", "-c", "env > /www/env.txt; cat /run/secrets/token > /www/secret.txt; '
       "stat -c '%a %u' /run/secrets/token > /www/mode.txt; exec httpd -f -p 8000 -h /www\"]\n")


def site(text: str) -> dict[str, str]:
    files = static_site(text)
    files["Dockerfile"] = files["Dockerfile"].replace('CMD ["httpd", "-f", "-v", "-p", "8000", "-h", "/www"]\n', CMD)
    assert CMD in files["Dockerfile"]
    return files


def cli_with_input(server: Server, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / "dockyard"), *args], env=server.env, input=stdin, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"dockyard {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def api_answers(server: Server, app: str, envs: tuple[str, ...] = ("production",)) -> dict[str, str]:
    """Every GET the OpenAPI schema lists, for this app, each of ``envs`` and its jobs (a route
    that needs another name, of one resource, is left out)."""
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    job_ids = [str(j["id"]) for j in jobs_of(server, app)]
    answers = {"/openapi.json": httpx.get(f"{server.url}/openapi.json").text}
    for path, methods in paths.items():
        if "get" not in methods or path.startswith("/git/"):
            continue
        for filled in dict.fromkeys(path.replace("{name}", app).replace("{environment}", env).replace("{env}", env)
                                    for env in envs):
            answers.update(_answers(server, app, filled, job_ids))
    return answers


def _answers(server: Server, app: str, filled: str, job_ids: list[str]) -> dict[str, str]:
    answers = {}
    for job_id in job_ids if "{job_id}" in filled else [""]:
        url = filled.replace("{job_id}", job_id)
        if "{" in url:
            continue
        r = server.api("GET", url, params={"app": app} if url == "/api/v1/jobs" else None)
        assert r.status_code == 200, (url, r.status_code, r.text)
        answers[url] = r.text
    return answers


def cli_outputs(server: Server, app: str, envs: tuple[str, ...] = ("production",)) -> dict[str, str]:
    commands = [["apps"], ["releases", app], ["images", app], ["jobs", "--app", app], ["system"], ["envs", "list", app]]
    for env in envs:
        commands += [[c, app, "--env", env] for c in ("status", "releases", "images", "logs")]
        commands += [["env", "list", app, "--env", env], ["secrets", "list", app, "--env", env]]
    commands += [[*c, "--json"] for c in commands if c[0] not in ("logs",)]
    commands += [["jobs", "show", str(j["id"])] for j in jobs_of(server, app)]
    outputs = {}
    for command in commands:
        proc = server.cli(*command)
        outputs[" ".join(command)] = proc.stdout + proc.stderr
    return outputs


def database_cells(db: Path) -> list[tuple[str, str, object]]:
    """(table, column, value) of every cell of every table."""
    cells = []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            cells += [(table, column, value) for row in cursor for column, value in zip(columns, row, strict=True)]
    return cells


def leaks(server: Server, app: str, secrets: list[str], pushes: list[str],
          envs: tuple[str, ...] = ("production",)) -> list[str]:
    """Where any of ``secrets`` shows: API answers, CLI outputs, push outputs, database cells,
    files of DOCKYARD_HOME (the key file aside)."""
    found = []
    texts = {**{f"API {k}": v for k, v in api_answers(server, app, envs).items()},
             **{f"CLI {k}": v for k, v in cli_outputs(server, app, envs).items()},
             **{f"push {i}": p for i, p in enumerate(pushes)}}
    for secret in secrets:
        found += [where for where, text in texts.items() if secret in text]
        for table, column, value in database_cells(server.home / "dockyard.db"):
            if (isinstance(value, str) and secret in value) or (isinstance(value, bytes) and secret.encode() in value):
                found.append(f"database {table}.{column}")
        for path in server.home.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.name != "secrets.key" and \
                    secret.encode() in path.read_bytes():
                found.append(f"file {path}")
    return found


def web_container(server: Server, app: str) -> str:
    status = server.api("GET", f"/api/v1/apps/{app}").json()
    [container] = [c["id"] for c in status["containers"] if c["service"] == "web" and c["state"] == "running"]
    return str(container)


def test_variables_and_secrets_reach_the_container_and_nothing_else(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    host = f"{app_name}.localhost"
    first, second = f"tok1-{uuid.uuid4().hex}", f"tok2-{uuid.uuid4().hex}"
    server.cli("apps", "create", app_name)
    out = server.cli("env", "set", app_name, "GREETING=hello world", "MODE=test").stdout
    assert "set GREETING, MODE" in out and "dockyard deploy" in out
    out = cli_with_input(server, first + "\n", "secrets", "set", app_name, "token").stdout
    assert f"secret token of {app_name} (production) is at version 1" in out and first not in out
    refused = server.cli("secrets", "set", app_name, "token", "on-the-command-line", check=False)
    assert refused.returncode != 0 and "unexpected extra argument" in refused.stderr

    push = server.push(make_repo(tmp_path / "src", site("secrets")), app_name)
    assert push.returncode == 0, push.stderr
    assert server.body(host, "/secret.txt") == first  # one trailing newline dropped
    env = server.body(host, "/env.txt").splitlines()
    assert f"token={first}" in env and "GREETING=hello world" in env and "MODE=test" in env
    assert server.body(host, "/mode.txt") == "400 0\n"  # /run/secrets/token: root's, read-only
    key = server.home / "secrets.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    assert server.cli("env", "list", app_name).stdout.split() == ["KEY", "VALUE", "GREETING", "hello", "world",
                                                                  "MODE", "test"]
    [listed] = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/secrets").json()
    assert (listed["name"], listed["version"], listed["versions"]) == ("token", 1, 1)
    assert set(listed) == {"name", "environment", "version", "versions", "key_id", "created_at", "updated_at"}
    release = server.api("GET", f"/api/v1/apps/{app_name}/releases").json()[0]
    assert release["config"] == {"variables": ["GREETING", "MODE"], "secrets": {"token": 1}}
    assert release["services"][0]["secrets"] == [["token", 1]]
    assert leaks(server, app_name, [first], [push.stdout + push.stderr]) == []
    control = leaks(server, app_name, ["hello world"], [])  # a variable's value (not secret): the scan finds it
    assert "database variables.value" in control and f"CLI env list {app_name} --env production" in control
    assert f"API /api/v1/apps/{app_name}/environments/production/variables" in control
    assert any(where.startswith("file ") for where in control)

    # a new version: the service restarts with it
    before = web_container(server, app_name)
    (tmp_path / "token").write_text(second + "\n")
    out = server.cli("secrets", "set", app_name, "token", "--from-file", str(tmp_path / "token")).stdout
    assert "is at version 2" in out
    deployed = server.cli("deploy", app_name).stdout
    assert "Starting web" in deployed
    assert server.body(host, "/secret.txt") == second
    assert web_container(server, app_name) != before

    # nothing changed: the container is kept
    kept = web_container(server, app_name)
    assert f"web: unchanged, keeping {kept[:12]}" in server.cli("deploy", app_name).stdout
    assert kept[:12] in server.cli("status", app_name).stdout

    # a new key: every secret sealed again, the file replaced, containers kept
    old_key = key.read_bytes()
    out = server.cli("secrets", "rotate-key").stdout
    assert f"-> {server.api('GET', '/api/v1/secrets-key').json()['key_id']}" in out
    assert key.read_bytes() != old_key and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (server.home / "secrets.key.new").exists()
    [listed] = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/secrets").json()
    assert out.split("-> ")[1].startswith(listed["key_id"]) and listed["versions"] == 2
    assert f"web: unchanged, keeping {kept[:12]}" in server.cli("deploy", app_name).stdout
    # a variable changes: the new container gets the secret opened with the new key
    server.cli("env", "set", app_name, "GREETING=hi")
    server.cli("deploy", app_name)
    assert server.body(host, "/secret.txt") == second
    assert "GREETING=hi" in server.body(host, "/env.txt").splitlines()
    assert web_container(server, app_name) != kept

    assert leaks(server, app_name, [first, second], [push.stdout + push.stderr]) == []

    # the secret's volume goes with the app
    volumes = {"label": [f"dockyard.installation={server.installation}", f"dockyard.app={app_name}"]}
    assert len(engine.volumes.list(filters=volumes)) == 1  # the files of the live version only
    server.cli("secrets", "remove", app_name, "token")
    assert server.api("GET", f"/api/v1/apps/{app_name}/environments/production/secrets").json() == []
    server.cli("apps", "delete", app_name, "--yes")
    assert engine.volumes.list(filters=volumes) == []


def test_known_secret_values_are_redacted_from_build_output_and_job_logs(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    secret = f"leaky-{uuid.uuid4().hex}"
    server.cli("apps", "create", app_name)
    cli_with_input(server, secret, "secrets", "set", app_name, "api_key")
    files = static_site("redacted")
    files["Dockerfile"] = files["Dockerfile"].replace("COPY public /www", f"RUN echo 'the build says {secret}'\n"
                                                      "COPY public /www")
    push = server.push(make_repo(tmp_path / "src", files), app_name)
    assert push.returncode == 0, push.stderr
    assert "the build says <redacted:api_key>" in push.stderr and secret not in push.stderr
    job = jobs_of(server, app_name)[0]
    log = server.api("GET", f"/api/v1/jobs/{job['id']}/logs").text
    assert "<redacted:api_key>" in log and secret not in log


def test_bad_names_and_values_are_refused(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    for args, message in [
        (["env", "set", app_name, "1BAD=x"], "invalid variable name '1BAD'"),
        (["env", "set", app_name, "NOEQUALS"], "not KEY=VALUE"),
        (["env", "set", app_name, "A=1", "--env", "Bad_Env"], "invalid environment name"),
        (["secrets", "remove", app_name, "missing"], "no secret named 'missing'"),
        (["env", "list", "no-such-app"], "no app named 'no-such-app'"),
    ]:
        proc = server.cli(*args, check=False)
        assert proc.returncode == 1 and message in proc.stderr, (args, proc.stderr)
    empty = subprocess.run([str(BIN / "dockyard"), "secrets", "set", app_name, "token"], env=server.env, input="",
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 1 and "the value is empty" in empty.stderr
    big = tmp_path / "big"
    big.write_bytes(b"x" * (64 * 1024 + 10))
    proc = server.cli("secrets", "set", app_name, "token", "--from-file", str(big), check=False)
    assert proc.returncode == 1 and "over 65536 bytes" in proc.stderr
    r = server.api("PUT", f"/api/v1/apps/{app_name}/environments/production/secrets/bad-name", json={"value": "x"})
    assert r.status_code == 400 and "invalid secret name" in r.json()["error"]
    r = server.api("PATCH", f"/api/v1/apps/{app_name}/environments/production/variables", json={"A": "x" * 40000})
    assert r.status_code == 400 and "over the limit" in r.json()["error"]
    staging = server.cli("env", "set", app_name, "A=staging", "--env", "staging")
    assert "(staging)" in staging.stdout
    assert server.cli("env", "list", app_name, "--env", "staging", "--json").stdout.strip() == '{\n  "A": "staging"\n}'
    assert server.api("GET", f"/api/v1/apps/{app_name}/environments/production/variables").json() == {}


@pytest.mark.parametrize("command", [["env"], ["env", "set"], ["env", "unset"], ["env", "list"], ["secrets"],
                                     ["secrets", "set"], ["secrets", "list"], ["secrets", "remove"],
                                     ["secrets", "rotate-key"]])
def test_every_configuration_command_has_help(command: list[str]) -> None:
    out = subprocess.run([str(BIN / "dockyard"), *command, "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and "Usage:" in out.stdout


def test_openapi_lists_the_configuration_routes(server: Server) -> None:
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    base = "/api/v1/apps/{name}/environments/{environment}"
    expected = {f"{base}/variables": {"get", "patch"}, f"{base}/variables/{{key}}": {"put", "delete"},
                f"{base}/secrets": {"get"}, f"{base}/secrets/{{secret}}": {"put", "delete"},
                "/api/v1/secrets-key": {"get"}, "/api/v1/secrets-key/rotate": {"post"}}
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
