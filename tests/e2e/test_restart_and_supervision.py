"""Long work survives a crash and restart of the server (the data plane: tests/e2e/test_data_plane.py)."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.support import Server, jobs_of, slow_push, wait_until


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
