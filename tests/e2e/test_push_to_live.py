"""The foundation's path, as a user walks it: create an app, git push, the page answers through the
proxy; push a change, the new page answers; a broken push leaves the old page answering."""

from __future__ import annotations

from pathlib import Path

from tests.support import Server, head, jobs_of, make_repo, static_site, wait_until


def test_push_change_and_broken_push(server: Server, app_name: str, tmp_path: Path) -> None:
    out = server.cli("apps", "create", app_name).stdout
    assert f"/git/{app_name}.git" in out

    repo = make_repo(tmp_path / "src", static_site("hello v1"))
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    # the build and deploy stream back into git's own output
    assert "remote: -----> Building Dockerfile" in push.stderr
    assert "remote: -----> Pushing" in push.stderr
    assert "remote: -----> Release" in push.stderr and "is live" in push.stderr
    assert f"http://{app_name}.localhost:{server.proxy_port}/" in push.stderr
    assert server.body(f"{app_name}.localhost") == "hello v1\n"

    make_repo(repo, static_site("hello v2", version="1.1"))
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    assert server.body(f"{app_name}.localhost") == "hello v2\n"
    v2_commit = head(repo)

    # a Dockerfile that fails to build
    files = static_site("hello v3", version="1.2")
    files["Dockerfile"] = files["Dockerfile"].replace("COPY public /www", "COPY public /www\nRUN false")
    make_repo(repo, files)
    push = server.push(repo, app_name)
    assert "build failed" in push.stderr
    assert push.returncode == 0  # the push is stored; its deploy failed
    assert "remote:  !     Nothing was released; the previous release keeps serving." in push.stderr
    assert server.body(f"{app_name}.localhost") == "hello v2\n"
    failed = jobs_of(server, app_name)[0]
    assert failed["status"] == "failed" and "build failed" in failed["error"]

    status = server.api("GET", f"/api/v1/apps/{app_name}").json()
    assert status["live_release"]["commit"] == v2_commit
    assert status["urls"] == [f"http://{app_name}.localhost:{server.proxy_port}/"]
    running = [c for c in status["containers"] if c["state"] == "running"]
    assert len(running) == 1, "the old container is stopped once the new one serves"

    cli_status = server.cli("status", app_name).stdout
    assert v2_commit[:10] in cli_status and "running" in cli_status

    images = server.cli("images", app_name).stdout
    assert f"{app_name}/site" in images and "1.0" in images and "1.1" in images and "1.2" not in images


def test_container_that_crashes_leaves_old_release_serving(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("stable"))
    assert server.push(repo, app_name).returncode == 0
    files = static_site("never served", version="2.0")
    files["Dockerfile"] = files["Dockerfile"].replace('CMD ["httpd", "-f", "-v", "-p", "8000", "-h", "/www"]',
                                                      'CMD ["sh", "-c", "echo boom; exit 3"]')
    make_repo(repo, files)
    push = server.push(repo, app_name)
    assert "exited (code 3)" in push.stderr and "boom" in push.stderr
    assert server.body(f"{app_name}.localhost") == "stable\n"
    releases = server.api("GET", f"/api/v1/apps/{app_name}/releases").json()
    assert [r["status"] for r in releases] == ["failed", "live"]


def test_logs_show_container_output(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("logged"))
    assert server.push(repo, app_name).returncode == 0
    assert server.body(f"{app_name}.localhost", "/index.html") == "logged\n"

    def logged() -> str:
        out = server.cli("logs", app_name).stdout
        return out if "index.html" in out or "GET /" in out or "response:200" in out else ""

    out = wait_until(logged, 15, "the request to show in dockyard logs")
    assert out.startswith("web[r")


def test_redeploy_from_cli_keeps_unchanged_service(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("same"))
    assert server.push(repo, app_name).returncode == 0
    before = [c["id"] for c in server.api("GET", f"/api/v1/apps/{app_name}").json()["containers"]]
    out = server.cli("deploy", app_name).stdout
    assert "unchanged, keeping" in out and "succeeded" in out
    after = [c["id"] for c in server.api("GET", f"/api/v1/apps/{app_name}").json()["containers"]]
    assert before == after
    assert server.body(f"{app_name}.localhost") == "same\n"


def test_logs_follow_streams_new_output(server: Server, app_name: str, tmp_path: Path) -> None:
    import subprocess
    import threading

    from tests.support import BIN

    server.cli("apps", "create", app_name)
    assert server.push(make_repo(tmp_path / "src", static_site("followed")), app_name).returncode == 0
    follow = subprocess.Popen([str(BIN / "dockyard"), "logs", app_name, "-f", "--tail", "0"], env=server.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follow.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        def requested() -> bool:
            server.body(f"{app_name}.localhost", "/followed-marker")
            return any("response:404" in line for line in lines)  # busybox httpd logs the status

        wait_until(requested, 20, "a new request to stream through dockyard logs -f", interval=0.5)
        assert follow.poll() is None, "logs -f keeps running"
    finally:
        follow.terminate()
        follow.wait(timeout=10)
