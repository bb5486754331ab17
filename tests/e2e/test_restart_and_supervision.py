"""Long work survives a crash and restart of the server; the registry and proxy it supervises come back."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support import Server, jobs_of, make_repo, slow_push, static_site, wait_until


def test_deploy_job_resumes_after_server_restart(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    with slow_push(server, app_name, tmp_path / "src", "after restart", seconds=4):
        server.stop(signal.SIGKILL)  # a crash: no chance to finish the job
        server.start()
    job = wait_until(
        lambda: next((j for j in jobs_of(server, app_name) if j["status"] in ("succeeded", "failed")), None),
        120, "the resumed job to finish",
    )
    assert job["status"] == "succeeded" and job["attempts"] == 2
    log = server.cli("jobs", "show", str(job["id"])).stdout
    assert "dockyard restarted while this job ran; resuming it" in log
    assert server.body(f"{app_name}.localhost") == "after restart\n"


def test_proxy_and_registry_are_restarted_with_routes(server: Server, app_name: str, tmp_path: Path) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("still routed"))
    assert server.push(repo, app_name).returncode == 0
    assert server.body(f"{app_name}.localhost") == "still routed\n"

    def child(name: str) -> int:
        out = subprocess.run(["pgrep", "-P", str(server.proc.pid), "-f", name], capture_output=True, text=True)
        return int(out.stdout.split()[0]) if out.stdout.strip() else 0

    caddy, registry = child("caddy run"), child("docker-registry serve")
    assert caddy and registry
    os.kill(caddy, signal.SIGKILL)
    os.kill(registry, signal.SIGKILL)
    wait_until(lambda: server.body(f"{app_name}.localhost") == "still routed\n", 30, "the route to come back")
    assert child("caddy run") not in (0, caddy)
    health = wait_until(lambda: (h := server.api("GET", "/api/v1/health").json())["registry"]["running"] and h,
                        30, "the registry to run again")
    assert health["proxy"]["running"]
    # and the registry works: a new push goes through
    make_repo(repo, static_site("pushed after registry restart", version="1.1"))
    assert server.push(repo, app_name).returncode == 0
    assert server.body(f"{app_name}.localhost") == "pushed after registry restart\n"
