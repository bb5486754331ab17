"""`dockyard releases pause|resume|abort APP` on a release that is running, as a user types them
from another terminal while a push follows its deploy."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import BASE_IMAGE, Server, make_repo, wait_until


def slow_site(text: str) -> dict[str, str]:
    """A site that answers only after 4 s: time enough to act on its release."""
    return {
        "Dockerfile": f"FROM {BASE_IMAGE}\nCOPY public /www\nEXPOSE 8000\n"
                      'CMD ["sh", "-c", "sleep 4; exec httpd -f -p 8000 -h /www"]\n',
        "public/index.html": text + "\n",
    }


def pushing(server: Server, repo: Path, app: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["git", "push", server.remote(app), "main"], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def running_release(server: Server, app: str) -> bool:
    releases = server.api("GET", f"/api/v1/apps/{app}/environments/production/releases").json()
    return bool(releases) and releases[0]["status"] == "pending"


def test_a_running_release_is_paused_resumed_and_aborted(server: Server, app_name: str, tmp_path: Path) -> None:
    host = f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", slow_site("v1"))
    assert server.push(repo, app_name).returncode == 0
    assert server.body(host).strip() == "v1"

    refused = server.cli("releases", "pause", app_name, check=False)  # nothing runs
    assert refused.returncode != 0 and "no release of" in refused.stderr and "is running" in refused.stderr

    make_repo(repo, slow_site("v2"))
    push = pushing(server, repo, app_name)
    wait_until(lambda: running_release(server, app_name), 60, "the release to start")
    assert "paused" in server.cli("releases", "pause", app_name).stdout
    job = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()[0]["job_id"]
    wait_until(lambda: "paused by" in server.cli("jobs", "show", str(job)).stdout, 60,
               "the release to stop at its next step")  # once its container is ready
    assert running_release(server, app_name)  # held there
    assert "running" in server.cli("releases", "resume", app_name).stdout
    out, _ = push.communicate(timeout=120)
    assert "paused by" in out and "resumed" in out and "is live" in out, out
    assert server.body(host).strip() == "v2"

    make_repo(repo, slow_site("v3"))
    push = pushing(server, repo, app_name)
    wait_until(lambda: running_release(server, app_name), 60, "the release to start")
    aborted = server.cli("releases", "abort", app_name)
    assert "aborting" in aborted.stdout, aborted.stdout
    out, _ = push.communicate(timeout=120)
    assert "was aborted by" in out and "the previous release keeps serving" in out, out
    assert server.body(host).strip() == "v2"
    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()
    assert releases[0]["status"] == "failed" and "was aborted by" in releases[0]["error"]
    assert releases[1]["status"] == "live"
