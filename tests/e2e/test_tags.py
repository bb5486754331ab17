"""Tags that deploy: dockyard.yml's `tag:` pattern, annotated and lightweight tags, real git pushes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support import Server, make_repo, static_site

STAGES = "environments:\n  staging: {branch: main}\n  live: {tag: 'v*'}\n"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=repo, check=True,
                   capture_output=True)


def test_a_matching_tag_deploys_the_commit_it_points_at_and_other_tags_are_stored_only(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    app = app_name
    server.cli("apps", "create", app, "--branch", "trunk")  # production: deployed by nothing in this test
    repo = make_repo(tmp_path / "src", {**static_site("one"), "dockyard.yml": STAGES})
    pushed = server.push(repo, app)
    assert pushed.returncode == 0 and "staging: added" in pushed.stderr, pushed.stderr
    assert server.body(f"staging.{app}.localhost") == "one\n"

    # an annotated tag: peeled to its commit, which the environment its pattern matches gets
    git(repo, "tag", "-a", "v1.0", "-m", "first release")
    tagged = server.push(repo, app, "v1.0")
    assert tagged.returncode == 0, tagged.stderr
    assert "live: added, as dockyard.yml declares (target local, tags 'v1.0' and the like)" in tagged.stderr
    assert server.body(f"live.{app}.localhost") == "one\n"

    # a branch push leaves the tagged environment as it is; a lightweight tag moves it
    make_repo(repo, static_site("two"))
    assert server.push(repo, app).returncode == 0
    assert server.body(f"staging.{app}.localhost") == "two\n"
    assert server.body(f"live.{app}.localhost") == "one\n"
    git(repo, "tag", "v2.0")
    assert server.push(repo, app, "v2.0").returncode == 0
    assert server.body(f"live.{app}.localhost") == "two\n"
    releases = json.loads(server.cli("releases", app, "--env", "live", "--json").stdout)
    assert [r["status"] for r in releases][:2] == ["live", "superseded"]

    # a tag no pattern matches, and a deleted tag, are stored only
    make_repo(repo, static_site("three"))
    git(repo, "tag", "nightly")
    assert server.push(repo, app, "nightly").returncode == 0
    assert server.push(repo, app, ":refs/tags/v1.0").returncode == 0
    assert server.body(f"live.{app}.localhost") == "two\n"
    assert len(json.loads(server.cli("releases", app, "--env", "live", "--json").stdout)) == 2

    # a tag whose commit's dockyard.yml cannot be read (an old tag, say) is stored, and says why it deploys nothing
    make_repo(repo, {"dockyard.yml": "environments:\n  live: {tag: 'v[0-9]'}\n"})
    git(repo, "tag", "v3.0")
    stored = server.push(repo, app, "v3.0")
    assert stored.returncode == 0, stored.stderr
    assert "tag v3.0: its commit's dockyard.yml cannot be read, so it deploys nothing" in stored.stderr
    assert "is not a tag pattern" in stored.stderr
    assert server.body(f"live.{app}.localhost") == "two\n"
