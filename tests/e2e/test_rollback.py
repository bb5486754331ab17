"""Rollback end to end, as a user types it: `dockyard rollback APP` returns production to the
release before the live one while clients call it through the proxy (no failed request), the
rollback is recorded as a release, a named release can be returned to, and what cannot be is
refused with a clear message and changes nothing."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support import Load, Server, make_repo, static_site


def test_rollback_returns_to_an_earlier_release_under_load_and_is_recorded(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    host = f"{app_name}.localhost"
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("v1", version="1.0"))
    for text, version in (("v1", "1.0"), ("v2", "2.0"), ("v3", "3.0")):
        make_repo(repo, static_site(text, version=version))
        push = server.push(repo, app_name)
        assert push.returncode == 0 and "is live" in push.stderr, push.stderr
    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()
    v3, v2, v1 = (r["id"] for r in releases)
    assert server.body(host).strip() == "v3"

    with Load(server, host) as load:
        time.sleep(0.3)
        begun = time.monotonic()
        out = server.cli("rollback", app_name)
        took = time.monotonic() - begun
        time.sleep(0.3)
    assert f"Rolling back {app_name} to release {v2}" in out.stdout, out.stdout
    assert "is live" in out.stdout and "Building" not in out.stdout, out.stdout
    assert server.body(host).strip() == "v2"
    assert load.failed == [], load.failed[:5]
    assert set(load.answers) <= {"v3", "v2"} and load.answers["v2"] > 0, load.answers
    print(f"rollback: {took:.2f}s through the CLI, {sum(load.answers.values())} requests, {len(load.failed)} failed, "
          f"{len(load.resent)} sent again")

    releases = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()
    newest = releases[0]
    assert newest["id"] > v3 and newest["status"] == "live" and newest["commit"] == releases[2]["commit"]
    job = server.api("GET", f"/api/v1/jobs/{newest['job_id']}").json()
    assert job["kind"] == "rollback", job

    out = server.cli("rollback", app_name, str(v1))  # a named release
    assert server.body(host).strip() == "v1", out.stdout

    # refused, with what to do, and nothing changes
    refused = server.cli("rollback", app_name, "--env", "nowhere", check=False)
    assert refused.returncode != 0 and "nowhere" in refused.stderr, refused.stderr
    live_id = server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()[0]["id"]
    refused = server.cli("rollback", app_name, str(live_id), check=False)
    assert refused.returncode != 0 and f"release {live_id} is {app_name}'s environment production's live release" \
        in refused.stderr, refused.stderr
    refused = server.cli("rollback", app_name, str(v1 + 1000), check=False)
    assert refused.returncode != 0 and f"has no release {v1 + 1000}" in refused.stderr, refused.stderr
    assert "dockyard releases" in refused.stderr  # what to do next
    assert server.body(host).strip() == "v1"
    assert server.api("GET", f"/api/v1/apps/{app_name}/environments/production/releases").json()[0]["id"] == live_id
