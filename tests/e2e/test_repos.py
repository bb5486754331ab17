"""An app of five repos shaped like the seed's, end to end: base-container-images, api, vitrine
and supervision build images; compose-containers holds the stack and dockyard.yml. develop deploys
dev, master deploys recette by itself, production takes recette's releases once an approver says
so. Real server, real git pushes to each repo by a developer, a webhook receiver checking
signatures, and the audit chain."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from dockyard.domain.webhooks import verify
from tests.e2e.test_audit_and_webhooks import Sink, an_edited_row_breaks_the_chain
from tests.e2e.test_audit_and_webhooks import sink as sink  # the fixture, re-exported
from tests.e2e.test_promotion import images as services
from tests.e2e.test_promotion import waiting
from tests.e2e.test_roles import as_user
from tests.support import BASE_IMAGE, Server, make_repo, static_site, wait_until

REGISTRY = "dockyard.test/crigen"
SERVE = 'CMD ["sh", "-c", "env > /www/env.txt; cat /base.txt > /www/base.txt; exec httpd -f -p 8000 -h /www"]\n'


def header(name: str, version: str) -> str:
    return f"# {REGISTRY}/{name}\n#\n# VERSION   {version}\n"


def base_repo(text: str) -> dict[str, str]:
    return {"nodejs/Dockerfile": header("nodejs", "0.1") + f"FROM {BASE_IMAGE}\nCOPY base.txt /base.txt\n",
            "nodejs/base.txt": text + "\n",
            "README.md": "the seed's base-container-images\n"}


def web_repo(name: str, version: str, text: str) -> dict[str, str]:
    return {"Dockerfile": header(name, version) + f"FROM {REGISTRY}/nodejs:0.1\nCOPY public /www\nEXPOSE 8000\n"
                          + SERVE,
            "public/index.html": text + "\n"}


def api_repo(text: str) -> dict[str, str]:
    files = web_repo("api", "0.2", text)
    files["Dockerfile-tools"] = header("api-tools", "0.1") + f"FROM {REGISTRY}/api:0.2\nCMD [\"sleep\", \"3600\"]\n"
    return files


def deploy_repo(approver: str) -> dict[str, str]:
    return {
        "docker-compose.yml": (
            "services:\n"
            f"  vitrine:\n    image: {REGISTRY}/vitrine:0.1\n    ports: ['8000']\n    environment: [GREETING]\n"
            f"  api:\n    image: {REGISTRY}/api:0.2\n    ports: ['8000']\n    environment: [GREETING]\n"
            f"  supervision:\n    image: {REGISTRY}/supervision:0.1\n    ports: ['8000']\n"
        ),
        "dockyard.yml": (
            "environments:\n  dev: {branch: develop}\n  recette: {branch: master}\n"
            f"  production:\n    promotion: {{from: recette, approvals: 1, approvers: [{approver}]}}\n"
        ),
    }


def push(server: Server, token: str, repo: Path, path: str, *refspecs: str) -> str:
    """git push to /git/PATH.git as the token's user; the push's output (it follows the deploys)."""
    remote = f"http://dev:{token}@127.0.0.1:{server.api_port}/git/{path}.git"
    done = subprocess.run(["git", "push", remote, *refspecs], cwd=repo, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_five_repos_like_the_seed_from_push_to_production(
    server: Server, app_name: str, tmp_path: Path, sink: Sink
) -> None:
    app, dev_name, ann_name = app_name, f"dev-{app_name}", f"ann-{app_name}"
    server.cli("apps", "create", app, "--branch", "master")
    server.cli("envs", "create", app, "recette", "--branch", "master")
    server.cli("envs", "create", app, "dev", "--branch", "develop")
    server.cli("env", "set", app, "GREETING=from-recette", "--env", "recette")
    server.cli("env", "set", app, "GREETING=from-production")
    secret = next(line.split(": ", 1)[1] for line in server.cli("webhooks", "add", app, sink.url).stdout.splitlines()
                  if line.startswith("signing secret"))
    dev = server.cli("users", "add", dev_name, "--role", "developer").stdout.strip()
    ann = server.cli("users", "add", ann_name, "--role", "approver").stdout.strip()
    for name in ("base-container-images", "api", "vitrine", "supervision"):
        added = server.cli("repos", "add", app, name)
        assert f"/git/{app}/{name}.git" in added.stdout
    server.cli("repos", "add", app, "compose-containers", "--role", "deploy")
    listed = {r["name"]: r for r in json.loads(server.cli("repos", "list", app, "--json").stdout)}
    assert {n: r["role"] for n, r in listed.items()} == {
        "compose-containers": "deploy", "base-container-images": "source", "api": "source", "vitrine": "source",
        "supervision": "source"}
    refused = as_user(server, dev, "repos", "add", app, "sneaky")
    assert refused.returncode == 1 and "403" not in refused.stdout  # a developer may not add repos: said plainly
    assert "may not" in refused.stdout + refused.stderr

    # each source repo builds on master and develop; the base first, the others FROM it
    trees = {"base-container-images": base_repo("base-1"), "api": api_repo("api-1"),
             "vitrine": web_repo("vitrine", "0.1", "vitrine-1"), "supervision": web_repo("supervision", "0.1", "sup-1")}
    repos = {}
    for name, files in trees.items():
        repos[name] = make_repo(tmp_path / name, files)
        said = push(server, dev, repos[name], f"{app}/{name}", "main:master", "main:develop")
        assert f"Building {name} at" in said, said
    assert "the first push of the stack releases them" in said
    assert f"FROM {REGISTRY}/nodejs:0.1: {REGISTRY}/nodejs:0.1 built from base-container-images" in said
    listed = {r["name"]: r for r in json.loads(server.cli("repos", "list", app, "--json").stdout)}
    assert listed["api"]["images"] == [f"{REGISTRY}/api-tools:0.1", f"{REGISTRY}/api:0.2"]

    # the deploy repo, without a Dockerfile: develop deploys dev, master deploys recette, production waits
    stack = make_repo(tmp_path / "compose-containers", deploy_repo(ann_name))
    said = push(server, dev, stack, f"{app}/compose-containers", "main:master", "main:develop")
    assert "production: promoted from recette once its gates pass" in said, said
    assert server.body(f"dev.{app}.localhost") == "vitrine-1\n", said
    assert server.body(f"recette.{app}.localhost") == "vitrine-1\n"
    assert server.body(f"api.recette.{app}.localhost") == "api-1\n"
    assert server.body(f"supervision.recette.{app}.localhost", "/base.txt") == "base-1\n"
    assert server.get(f"{app}.localhost").status_code != 200
    recette = services(server, app, "recette")
    assert all(image.startswith("127.0.0.1:") and "@sha256:" in image for image in recette.values()), recette
    [candidate] = waiting(server, app)

    # a developer's approval is refused, and audited
    path = f"/api/v1/apps/{app}/environments/production/candidates/{candidate['release']}/approve"
    r = httpx.post(f"{server.url}{path}", json={}, headers={"Authorization": f"Bearer {dev}"})
    assert r.status_code == 403 and "may not approve or reject a release" in r.json()["error"]
    assert server.get(f"{app}.localhost").status_code != 200

    # the approver's approval deploys production with exactly recette's digests, and its own variables
    assert as_user(server, ann, "approve", app, str(candidate["release"]), "-m", "tested").returncode == 0
    wait_until(lambda: server.body(f"{app}.localhost") == "vitrine-1\n", 120, "production to serve")
    assert services(server, app, "production") == recette
    assert "GREETING=from-production" in server.body(f"api.{app}.localhost", "/env.txt")
    assert "GREETING=from-recette" in server.body(f"api.recette.{app}.localhost", "/env.txt")
    def promoted() -> dict:
        return json.loads(server.cli("releases", app, "--env", "production", "--json").stdout)[0]["timeline"]

    wait_until(lambda: promoted()["live_at"] is not None, 60, "the promoted release to be live")
    moments = promoted()
    assert moments["approval_requested_at"] <= moments["approved_at"] <= moments["live_at"], moments

    # the plan of recette resolves the images as a deploy would: nothing to change
    planned = json.loads(server.cli("plan", app, "--env", "recette", "--json").stdout)
    assert {c["service"]: c["action"] for c in planned["changes"]} == dict.fromkeys(recette, "keep"), planned

    # a push to api's develop deploys dev only, with the stack's other images as they were
    make_repo(repos["api"], {"public/index.html": "api-2\n"})
    push(server, dev, repos["api"], f"{app}/api", "main:develop")
    assert server.body(f"api.dev.{app}.localhost") == "api-2\n"
    assert server.body(f"api.recette.{app}.localhost") == "api-1\n"
    assert services(server, app, "dev")["vitrine"] == recette["vitrine"]
    again = server.cli("deploy", app, "--env", "dev", "--repo", "vitrine")  # on demand: its branch's head, built again
    assert "Building vitrine at" in again.stdout and services(server, app, "dev")["api"] != recette["api"]

    # a new base on master rebuilds every repo FROM it, in order; recette takes them, production waits
    make_repo(repos["base-container-images"], {"nodejs/base.txt": "base-2\n"})
    said = push(server, dev, repos["base-container-images"], f"{app}/base-container-images", "main:master")
    rebuilt = [line.split()[2] for line in said.splitlines() if "builds FROM an image just built" in line]
    assert sorted(rebuilt) == ["api", "supervision", "vitrine"], said
    assert server.body(f"supervision.recette.{app}.localhost", "/base.txt") == "base-2\n"
    assert server.body(f"api.recette.{app}.localhost", "/base.txt") == "base-2\n"
    newer = services(server, app, "recette")
    assert all(newer[s] != recette[s] for s in recette)
    [second] = waiting(server, app)

    # a rejection stops it: production keeps what was approved
    assert as_user(server, ann, "reject", app, str(second["release"]), "-m", "not this week").returncode == 0
    assert waiting(server, app) == []
    assert server.body(f"supervision.{app}.localhost", "/base.txt") == "base-1\n"
    assert services(server, app, "production") == recette

    # every event reached the webhook, signed; the audit chain verifies, and not once a row is edited
    wanted = {"approval.needed", "release.succeeded"}
    wait_until(lambda: wanted <= set(sink.events()), 30, f"webhook events {wanted} (got {sink.events()})")
    for headers, body in sink.received:
        assert verify(secret, body, headers["x-dockyard-signature"])
    entries = json.loads(server.cli("audit", "--app", app, "--json").stdout)
    done = {(e["action"], e["actor"]) for e in entries}
    assert {("release.approved", ann_name), ("release.rejected", ann_name), ("access.denied", dev_name),
            ("push.accepted", dev_name), ("repo.added", "admin")} <= done, done
    assert "audit log verified" in server.cli("audit", "--verify").stdout
    an_edited_row_breaks_the_chain(server, app, "release.approved")


def test_repos_refuse_what_they_cannot_be_and_a_bad_dockerfile_changes_nothing(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    app = app_name
    server.cli("apps", "create", app)
    for args, words in ((("repos", "add", app, "Bad_Name"), "invalid repo name"),
                        (("repos", "add", app, "x", "--role", "builder"), "role"),
                        (("repos", "add", "no-such-app", "api"), "no-such-app")):
        done = server.cli(*args, check=False)
        assert done.returncode != 0 and words in done.stdout + done.stderr, done.stdout + done.stderr
    server.cli("repos", "add", app, "api")
    again = server.cli("repos", "add", app, "api", check=False)
    assert again.returncode == 1 and "already" in again.stdout + again.stderr
    server.cli("repos", "add", app, "stack", "--role", "deploy")
    second = server.cli("repos", "add", app, "other-stack", "--role", "deploy", check=False)
    assert second.returncode == 1 and "deploy repo already" in second.stdout + second.stderr

    # a push of a Dockerfile that cannot build is refused before git stores it; nothing is built
    repo = make_repo(tmp_path / "api", {"Dockerfile": "# x/api\n#\n# VERSION 1\nFROM\n"})
    remote = server.remote(app).replace(f"/git/{app}.git", f"/git/{app}/api.git")
    done = subprocess.run(["git", "push", remote, "main"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Push rejected" in done.stderr, done.stderr
    assert json.loads(server.cli("repos", "list", app, "--json").stdout)[1]["images"] == []
    unknown = subprocess.run(["git", "push", remote.replace("/api.git", "/nope.git"), "main"], cwd=repo,
                             capture_output=True, text=True, timeout=300)
    assert unknown.returncode != 0 and "no repo named 'nope'" in unknown.stderr

    # removed: its remote is gone
    server.cli("repos", "remove", app, "api")
    gone = subprocess.run(["git", "push", remote, "main"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert gone.returncode != 0

    # dockyard.yml declares source repos: an admin's push of it (to a branch that deploys) adds those the app
    # lacks, and says where to push them; a developer's push names the command an admin runs
    stack = make_repo(tmp_path / "stack", {**static_site("stack"), "dockyard.yml": (
        "repos:\n  tools:\n  web: {role: source}\nenvironments:\n  recette: {branch: trunk}\n")})
    assert "repo tools added" not in server.push(stack, app, "main:elsewhere").stderr  # deploys nowhere
    dev = server.cli("users", "add", f"dev-{app}", "--role", "developer").stdout.strip()
    by_dev = subprocess.run(["git", "push", f"http://dev:{dev}@127.0.0.1:{server.api_port}/git/{app}.git",
                             "main:trunk"], cwd=stack, capture_output=True, text=True, timeout=300)
    assert f"an admin adds it: dockyard repos add {app} tools" in by_dev.stderr, by_dev.stderr
    make_repo(stack, {"public/index.html": "stack 2\n"})
    said = server.push(stack, app, "main:trunk")
    assert said.returncode == 0, said.stderr
    assert f"repo tools added, as dockyard.yml declares: push it to {server.url}/git/{app}/tools.git" in said.stderr
    listed = [r["name"] for r in json.loads(server.cli("repos", "list", app, "--json").stdout)]
    assert listed == ["stack", "tools", "web"]
    assert {"repo.added"} <= {e["action"] for e in json.loads(server.cli("audit", "--app", app, "--json").stdout)}
    bad = make_repo(tmp_path / "stack", {"dockyard.yml": "repos: {Tools: }\nenvironments:\n  production: {}\n"})
    refused = server.push(bad, app, "main:elsewhere")
    assert refused.returncode != 0 and "invalid repo name 'Tools'" in refused.stderr
