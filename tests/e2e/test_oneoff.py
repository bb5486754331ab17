"""`dockyard run` and `dockyard exec` through the real CLI, server and Docker engine: output,
input, exit codes, an image that runs as no service, volumes shared with the service, secrets
given and redacted from the record, a deadline, and what is refused."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import docker

from tests.support import BASE_IMAGE, BIN, Server, make_repo

SECRET = "s3cr3t-value-4242"


def stack() -> dict[str, str]:
    return {
        "web/Dockerfile": f"FROM {BASE_IMAGE}\nCOPY index.html /www/index.html\nEXPOSE 8000\n"
                          'CMD ["httpd", "-f", "-p", "8000", "-h", "/www"]\n',
        "web/index.html": "web\n",
        "web/Dockerfile-tools": f"# dockyard.test/demo/tools\n#\n# VERSION 1\nFROM {BASE_IMAGE}\n"
                                "COPY tools.txt /tools.txt\n",
        "web/tools.txt": "the tools image\n",
        "docker-compose.yml": "services:\n  web:\n    build: web\n    ports: ['8000']\n    volumes: [data:/data]\n"
                              "volumes:\n  data:\n",
    }


def dy(server: Server, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "dockyard"), *args], env=server.env, input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def test_run_and_exec_stream_output_take_input_and_give_the_exit_code(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    app = app_name
    server.cli("apps", "create", app)
    server.cli("env", "set", app, "GREETING=hello")
    subprocess.run([str(BIN / "dockyard"), "secrets", "set", app, "API_TOKEN"], env=server.env, input=SECRET,
                   text=True, check=True, capture_output=True)
    assert server.push(make_repo(tmp_path / "src", stack()), app).returncode == 0
    assert server.body(f"{app}.localhost") == "web\n"

    # output on stdout and stderr, the environment's variables and secrets, and the command's exit code
    done = dy(server, "run", app, "--", "sh", "-c", 'echo "$GREETING $API_TOKEN"; echo oops >&2; exit 3')
    assert (done.returncode, done.stdout) == (3, f"hello {SECRET}\n"), done.stderr
    assert "oops" in done.stderr
    # input piped in reaches the command, then ends
    assert dy(server, "run", app, "--", "sh", "-c", "cat; echo done", stdin="piped\n").stdout == "piped\ndone\n"
    # an image the release built, that runs as no service
    tools = dy(server, "run", app, "--image", "tools", "--", "cat", "/tools.txt")
    assert (tools.returncode, tools.stdout) == (0, "the tools image\n"), tools.stderr
    # a one-off of the service shares its volume; exec runs in the service's running container
    assert dy(server, "run", app, "--service", "web", "--", "sh", "-c", "echo kept > /data/f").returncode == 0
    execd = dy(server, "exec", app, "web", "--", "sh", "-c", "cat /data/f; hostname")
    assert execd.returncode == 0 and execd.stdout.startswith("kept\n"), execd.stderr

    # each is a job: who, the command with the secret redacted, the output, the exit code
    shown = dy(server, "run", app, "--", "echo", SECRET)
    assert shown.stdout == f"{SECRET}\n"
    jobs = json.loads(server.cli("jobs", "--app", app, "--json").stdout)
    runs = [j for j in jobs if j["kind"] in ("run", "exec")]
    assert len(runs) == 6 and {j["kind"] for j in runs} == {"run", "exec"}
    last = runs[0]
    assert SECRET not in json.dumps(last) and "<redacted:API_TOKEN>" in last["payload"]["command"]
    log = server.cli("jobs", "show", str(last["id"])).stdout
    assert SECRET not in log and "<redacted:API_TOKEN>" in log and "exit code 0" in log
    failed = next(j for j in runs if j["status"] == "failed")
    assert failed["error"] == "exit code 3"
    audit = json.loads(server.cli("audit", "--app", app, "--json").stdout)
    assert {"run.succeeded", "run.failed", "exec.succeeded"} <= {e["action"] for e in audit}
    assert all(SECRET not in json.dumps(e) for e in audit)

    # a deadline stops it: exit 124, and no container is left behind
    started = time.monotonic()
    late = dy(server, "run", app, "--timeout", "2", "--", "sleep", "60")
    assert late.returncode == 124 and "stopped after its deadline" in late.stderr, (late.returncode, late.stderr)
    assert time.monotonic() - started < 30
    engine = docker.from_env()
    assert engine.containers.list(all=True, filters={"label": "dockyard.oneoff"}) == []
    assert server.body(f"{app}.localhost") == "web\n"  # the service kept serving throughout


def test_what_cannot_run_is_refused_and_nothing_runs(server: Server, app_name: str, tmp_path: Path) -> None:
    app = app_name
    server.cli("apps", "create", app)
    server.cli("envs", "create", app, "recette", "--branch", "develop")
    nothing = dy(server, "run", app, "--", "ls")
    assert nothing.returncode == 1 and "no release is live" in nothing.stderr
    assert server.push(make_repo(tmp_path / "src", stack()), app).returncode == 0
    for args, words in (
        (("run", app, "--service", "nope", "--", "ls"), "has no service 'nope'"),
        (("run", app, "--image", "nope", "--", "ls"), "built no image 'nope'"),
        (("run", app, "--env", "recette", "--", "ls"), "no release is live in"),
        (("exec", app, "web", "--replica", "2", "--", "ls"), "its running replicas: 0"),
        (("exec", app, "nope", "--", "ls"), "runs no container of 'nope'"),
        (("run", app, "--", "no-such-command"), ""),
    ):
        done = dy(server, *args)
        assert done.returncode != 0 and words in done.stderr, (args, done.returncode, done.stderr)
    jobs = json.loads(server.cli("jobs", "--app", app, "--json").stdout)
    assert [j["kind"] for j in jobs if j["kind"] in ("run", "exec")] == ["run"]  # only the command that ran


def test_release_commands_run_before_the_switch_and_a_failing_one_aborts_the_release(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    app = app_name
    server.cli("apps", "create", app)
    server.cli("env", "set", app, "GREETING=hello")
    files = stack()
    files["dockyard.yml"] = ("release:\n  before:\n    - {service: web, command: \"sh -c 'echo migrating; "
                             "echo $GREETING > /data/migrated'\", timeout: 1m}\n"
                             "  after: [{service: web, command: [sh, -c, 'echo after; exit 5']}]\n"
                             "environments:\n  production: {branch: main}\n")
    repo = make_repo(tmp_path / "src", files)
    pushed = server.push(repo, app)
    assert pushed.returncode == 0, pushed.stderr
    assert "Release command (before the switch) in web: sh -c echo migrating;" in pushed.stderr
    assert "migrating" in pushed.stderr and "after" in pushed.stderr
    assert "failed (exit code 5); the release stays live" in pushed.stderr
    assert server.body(f"{app}.localhost") == "web\n"
    assert dy(server, "exec", app, "web", "--", "cat", "/data/migrated").stdout == "hello\n"

    # a failing command before the switch: the push says so, nothing new starts, the old release serves
    files["web/index.html"] = "web 2\n"
    files["dockyard.yml"] = ("release:\n  before: [{service: web, command: [sh, -c, 'echo broken migration; exit 1']}]\n"
                             "environments:\n  production: {branch: main}\n")
    make_repo(repo, files)
    failed = server.push(repo, app)
    assert "broken migration" in failed.stderr, failed.stderr
    assert "the release command 'sh -c echo broken migration; exit 1' in web failed (exit code 1)" in failed.stderr
    assert server.body(f"{app}.localhost") == "web\n"
    releases = json.loads(server.cli("releases", app, "--json").stdout)
    assert [r["status"] for r in releases] == ["live"]  # the aborted one started nothing


def test_from_a_terminal_run_gives_a_shell_its_input_and_its_exit_code(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    """The real CLI in a pseudo-terminal: keys reach a shell in the container, its answers come
    back, and the CLI exits with the shell's code; exec does the same in the running container."""
    import os
    import pty
    import select

    app = app_name
    server.cli("apps", "create", app)
    assert server.push(make_repo(tmp_path / "src", stack()), app).returncode == 0

    def session(*args: str, typed: list[bytes]) -> tuple[int, str]:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([str(BIN / "dockyard"), *args], env=server.env, stdin=follower, stdout=follower,
                                stderr=follower, close_fds=True)
        os.close(follower)
        seen = b""
        deadline = time.monotonic() + 60
        pending = list(typed)
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            if pending and (seen or time.monotonic() > deadline - 55):  # a prompt came, or 5 s passed
                time.sleep(0.5)
                os.write(leader, pending.pop(0))
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=30)
        os.close(leader)
        return code, seen.decode(errors="replace")

    code, seen = session("run", app, "--", "sh", typed=[b"echo $((6*7))\r", b"tty; exit 7\r"])
    assert code == 7, seen
    assert "42" in seen and "/dev/pts/" in seen, seen
    code, seen = session("exec", app, "web", "--", "sh", typed=[b"cat /www/index.html; exit 0\r"])
    assert code == 0 and "web" in seen, seen
    jobs = json.loads(server.cli("jobs", "--app", app, "--json").stdout)
    assert [(j["kind"], j["status"]) for j in jobs if j["kind"] in ("run", "exec")] == [
        ("exec", "succeeded"), ("run", "failed")]
