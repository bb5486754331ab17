"""The stage graph end to end, as the seed ran it: develop deploys dev, main deploys recette by
itself, production takes recette's releases once an approver says so, with exactly the images
that ran in recette and its own variables. Real server, git pushes by a developer, approvals by
named approvers, a webhook receiver checking signatures, and the audit chain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from dockyard.domain.webhooks import verify
from tests.e2e.test_audit_and_webhooks import Sink
from tests.e2e.test_audit_and_webhooks import sink as sink  # the fixture, re-exported
from tests.e2e.test_roles import as_user, push_as
from tests.support import Server, make_repo, static_site, wait_until

CMD = 'CMD ["sh", "-c", "env > /www/env.txt; exec httpd -f -p 8000 -h /www"]\n'


def site(text: str, stages: str) -> dict[str, str]:
    files = static_site(text)
    files["Dockerfile"] = files["Dockerfile"].replace('CMD ["httpd", "-f", "-v", "-p", "8000", "-h", "/www"]\n', CMD)
    assert CMD in files["Dockerfile"]
    files["dockyard.yml"] = stages
    return files


def images(server: Server, app: str, env: str, release: int | None = None) -> dict[str, str]:
    rows = json.loads(server.cli("releases", app, "--env", env, "--json").stdout)
    found = next(r for r in rows if r["status"] != "awaiting" and (release is None or r["id"] == release))
    return {s["name"]: s["image"] for s in found["services"]}


def waiting(server: Server, app: str) -> list[dict]:
    return json.loads(server.cli("approvals", app, "--json").stdout)


def test_main_deploys_recette_and_production_waits_for_an_approver(
    server: Server, app_name: str, tmp_path: Path, sink: Sink
) -> None:
    app, dev_name, ann_name, bob_name = app_name, f"dev-{app_name}", f"ann-{app_name}", f"bob-{app_name}"
    stages = (f"environments:\n  dev: {{branch: develop}}\n  recette: {{branch: main}}\n"
              f"  production:\n    promotion: {{from: recette, approvals: 1, approvers: [{ann_name}, {bob_name}]}}\n")
    server.cli("apps", "create", app)
    server.cli("envs", "create", app, "recette", "--branch", "main")
    server.cli("envs", "create", app, "dev", "--branch", "develop")
    server.cli("env", "set", app, "GREETING=from-recette", "--env", "recette")
    server.cli("env", "set", app, "GREETING=from-production")
    secret = next(line.split(": ", 1)[1] for line in server.cli("webhooks", "add", app, sink.url).stdout.splitlines()
                  if line.startswith("signing secret"))
    dev = server.cli("users", "add", dev_name, "--role", "developer").stdout.strip()
    ann = server.cli("users", "add", ann_name, "--role", "approver").stdout.strip()
    bob = server.cli("users", "add", bob_name, "--role", "approver").stdout.strip()
    carl = server.cli("users", "add", f"carl-{app}", "--role", "approver").stdout.strip()

    # develop deploys dev; main deploys recette by itself, and production waits
    repo = make_repo(tmp_path / "src", site("v1", stages))
    subprocess.run(["git", "branch", "develop"], cwd=repo, check=True)
    push = push_as(server, dev, repo, app, "develop", "main")
    assert push.returncode == 0, push.stderr
    assert "production: promoted from recette once its gates pass, not deployed by the push" in push.stderr
    assert server.body(f"dev.{app}.localhost") == "v1\n", push.stderr
    assert server.body(f"recette.{app}.localhost") == "v1\n"
    assert server.get(f"{app}.localhost").status_code != 200
    [candidate] = waiting(server, app)
    first = candidate["release"]
    assert (candidate["from"], candidate["environment"], candidate["pusher"]) == ("recette", "production", dev_name)
    assert candidate["waiting_for"] == f"approval by {ann_name}, {bob_name} (0 of 1)"
    assert f"waiting  release {first} from recette" in server.cli("status", app).stdout
    listed = json.loads(server.cli("releases", app, "--env", "production", "--json").stdout)
    assert listed[0]["status"] == "awaiting" and listed[0]["id"] == first

    # a developer's approval and an unlisted approver's are refused, and audited; an unknown release is named
    path = f"/api/v1/apps/{app}/environments/production/candidates/{first}/approve"
    r = httpx.post(f"{server.url}{path}", json={}, headers={"Authorization": f"Bearer {dev}"})
    assert r.status_code == 403 and "may not approve or reject a release" in r.json()["error"]
    r = httpx.post(f"{server.url}{path}", json={}, headers={"Authorization": f"Bearer {carl}"})
    assert r.status_code == 403 and "not among the approvers" in r.json()["error"]
    unknown = as_user(server, ann, "approve", app, "99999")
    assert unknown.returncode == 1 and "release 99999 is no candidate" in unknown.stderr
    assert server.get(f"{app}.localhost").status_code != 200  # nothing moved

    # the approver's approval promotes exactly recette's images, with production's variables
    assert as_user(server, ann, "approve", app, str(first), "-m", "tested").returncode == 0
    wait_until(lambda: server.body(f"{app}.localhost") == "v1\n", 120, "production to serve v1")
    assert images(server, app, "production") == images(server, app, "recette", first)
    assert all("@sha256:" in image for image in images(server, app, "production").values())
    assert "GREETING=from-production" in server.body(f"{app}.localhost", "/env.txt")
    assert "GREETING=from-recette" in server.body(f"recette.{app}.localhost", "/env.txt")
    assert waiting(server, app) == []

    # two more pushes: the newer candidate supersedes the older one; a rejection stops it
    make_repo(repo, site("v2", stages))
    assert push_as(server, dev, repo, app, "main").returncode == 0
    second = waiting(server, app)[0]["release"]
    make_repo(repo, site("v3", stages))
    assert push_as(server, dev, repo, app, "main").returncode == 0
    assert server.body(f"recette.{app}.localhost") == "v3\n"
    [third] = waiting(server, app)
    assert third["release"] != second
    late = as_user(server, ann, "approve", app, str(second))
    assert late.returncode == 1 and f"superseded by release {third['release']}" in late.stderr
    assert as_user(server, bob, "reject", app, str(third["release"]), "-m", "not this week").returncode == 0
    assert waiting(server, app) == []
    assert server.body(f"{app}.localhost") == "v1\n"  # production kept what was approved

    # a direct deploy into production overrides the stage graph: refused to a developer, an admin's is said
    bypass = as_user(server, dev, "deploy", app)
    assert bypass.returncode == 1 and "production takes its releases from recette" in bypass.stdout + bypass.stderr
    assert server.body(f"{app}.localhost") == "v1\n"
    overridden = server.cli("deploy", app)
    assert "this deploy by an admin overrides the stage graph" in overridden.stdout + overridden.stderr
    assert server.body(f"{app}.localhost") == "v3\n"

    # a file without the stage does not open it: production's live release keeps it promoted from recette
    make_repo(repo, {"dockyard.yml": "environments:\n  recette: {branch: main}\n"})
    loosened = push_as(server, dev, repo, app, "main")
    assert loosened.returncode == 0 and "production: promoted from recette" in loosened.stderr, loosened.stderr
    bypass = as_user(server, dev, "deploy", app)
    assert bypass.returncode == 1 and "production takes its releases from recette" in bypass.stdout + bypass.stderr
    assert waiting(server, app) == []  # the new file promotes nothing: no candidate either

    # every event reached the webhook, signed; the audit chain has the decisions and verifies
    wanted = {"approval.needed", "release.succeeded"}
    wait_until(lambda: wanted <= set(sink.events()), 30, f"webhook events {wanted} (got {sink.events()})")
    for headers, body in sink.received:
        assert verify(secret, body, headers["x-dockyard-signature"])
    production = [json.loads(b) for _, b in sink.received if json.loads(b)["environment"] == "production"]
    assert [p["event"] for p in production].count("approval.needed") == 3
    assert any(p["event"] == "release.succeeded" for p in production)
    entries = json.loads(server.cli("audit", "--app", app, "--json").stdout)
    decided = {(e["action"], e["actor"]) for e in entries}
    assert {("release.approved", ann_name), ("release.rejected", bob_name), ("access.denied", dev_name),
            ("promotion.overridden", "admin")} <= decided
    assert "audit log verified" in server.cli("audit", "--verify").stdout


def test_stage_graphs_that_cannot_run_are_refused_and_nothing_deploys(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    server.cli("apps", "create", app_name)
    cases = {
        "environments:\n  production: {promotion: {from: staging}}\n": "unknown environment 'staging'",
        ("environments:\n  a: {promotion: {from: b}}\n  b: {promotion: {from: a}}\n"
         "  production: {branch: main}\n"): "the stages form a cycle",
        "environments:\n  recette: {branch: main}\n  production: {branch: main, promotion: {from: recette}}\n":
            "production is promoted from recette: no branch deploys it",
    }
    repo = make_repo(tmp_path / "src", static_site("never"))
    for text, words in cases.items():
        make_repo(repo, {"dockyard.yml": text})
        push = server.push(repo, app_name)
        assert push.returncode != 0 and words in push.stderr, push.stderr
    assert server.get(f"{app_name}.localhost").status_code != 200
    assert json.loads(server.cli("releases", app_name, "--json").stdout) == []


def test_a_stage_without_approvers_promotes_by_itself_after_its_soak_time(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    stages = "environments:\n  recette: {branch: main}\n  production: {promotion: {from: recette, soak: 3s}}\n"
    server.cli("apps", "create", app_name)
    server.cli("envs", "create", app_name, "recette", "--branch", "main")
    repo = make_repo(tmp_path / "src", site("soaked", stages))
    assert server.push(repo, app_name).returncode == 0
    assert server.body(f"recette.{app_name}.localhost") == "soaked\n"
    [candidate] = waiting(server, app_name)
    assert candidate["waiting_for"].endswith("more in recette")
    wait_until(lambda: server.body(f"{app_name}.localhost") == "soaked\n", 60, "production to take recette's release")
    assert images(server, app_name, "production") == images(server, app_name, "recette", candidate["release"])
    def promoted() -> bool:  # the job ends a little after traffic moved (its monitor window, the old one's drain)
        jobs = json.loads(server.cli("jobs", "--app", app_name, "--json").stdout)
        return any(j["kind"] == "promote" and j["status"] == "succeeded" for j in jobs)

    wait_until(promoted, 60, "the promote job to succeed")


def test_a_smoke_check_upstream_holds_the_release_until_it_answers(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    stages = "environments:\n  recette: {branch: main}\n  production: {promotion: {from: recette, smoke: /ready.txt}}\n"
    server.cli("apps", "create", app_name)
    server.cli("envs", "create", app_name, "recette", "--branch", "main")
    files = site("smoked", stages)
    slow = 'CMD ["sh", "-c", "(sleep 8; echo ready > /www/ready.txt) & exec httpd -f -p 8000 -h /www"]\n'
    files["Dockerfile"] = files["Dockerfile"].replace(CMD, slow)
    repo = make_repo(tmp_path / "src", files)
    assert server.push(repo, app_name).returncode == 0
    assert server.body(f"recette.{app_name}.localhost") == "smoked\n"
    wait_until(lambda: "last: HTTP 404" in (waiting(server, app_name) or [{}])[0].get("waiting_for", ""), 30,
               "the candidate to wait for its smoke check")
    assert server.get(f"{app_name}.localhost").status_code != 200
    wait_until(lambda: server.body(f"{app_name}.localhost") == "smoked\n", 60,
               "production to take recette's release once /ready.txt answers")
    assert server.body(f"recette.{app_name}.localhost", "/ready.txt") == "ready\n"
