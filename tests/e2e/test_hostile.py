"""Hostile pushes, end to end: each case goes in through `git push` (to the deploy branch, where
the pre-receive hook checks it) and through the API (stored on a side branch, then deployed with
`POST /api/v1/apps/APP/deploys`). For every case:

1. the error is clear: git's output, or the failed job's `error`, names the problem and where
   (file and line, or the compose key path), and the failure is a failed job of the app;
2. the API answers within 1 s all along (a thread calls /health and /apps every ~100 ms);
3. the app's previous release still serves;
4. nothing outside the app changed: image tags in the engine, the proxy's other routes, the
   apps and their domains, Docker's containers and networks.

Two more cases are not errors: pushed `.gitattributes` do not change what is built, and a
symlink to a host file in the repository does not serve the host's file.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from tests.support import BASE_IMAGE, Server, make_repo, static_site, wait_until

GOOD = "the good release"
SLOWEST_ALLOWED = 1.0  # seconds an API answer may take while a hostile case runs
_slowest_seen: list[float] = []  # every case's slowest answer, summed up at the end of the module


# -- the hostile app ------------------------------------------------------------------------------


@dataclass
class Target:
    """The module's app with a good live release, and a bystander app that must not change."""

    server: Server
    app: str
    other: str
    repo: Path
    good: str  # the good commit, the deploy branch's head between cases

    @property
    def fields(self) -> dict[str, Any]:
        """What a case's files and messages may name."""
        return {"app": self.app, "other": self.other, "api_port": self.server.api_port,
                "registry": f"127.0.0.1:{self.server.registry_port}"}

    def live_release(self) -> int | None:
        live = self.server.api("GET", f"/api/v1/apps/{self.app}").json()["live_release"]
        return live["id"] if live else None


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args], cwd=repo,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def target(server: Server, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[Target]:
    started = time.monotonic()
    suffix = uuid.uuid4().hex[:6]
    app, other = f"hostile-{suffix}", f"bystander-{suffix}"
    for name, domains in ((app, []), (other, [f"{other}.example.com"])):
        r = server.api("POST", "/api/v1/apps", json={"name": name, "domains": domains})
        assert r.status_code == 201, r.text
    base = tmp_path_factory.mktemp("hostile")
    repo = make_repo(base / "app", static_site(GOOD))
    pushed = server.push(repo, app)
    assert pushed.returncode == 0, pushed.stderr
    pushed = server.push(make_repo(base / "other", static_site("the bystander")), other)
    assert pushed.returncode == 0, pushed.stderr
    assert server.body(f"{app}.localhost") == GOOD + "\n"
    assert server.body(f"{other}.example.com") == "the bystander\n"
    yield Target(server, app, other, repo, git(repo, "rev-parse", "HEAD"))
    if _slowest_seen:  # shown without -s too: the run time and the slowest answer are the suite's figures
        with pytestconfig.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print(f"\nhostile suite: {len(_slowest_seen)} cases in {time.monotonic() - started:.1f}s (the module's "
                  f"own setup included), slowest API answer {max(_slowest_seen) * 1000:.0f} ms")


# -- what a case pushes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Symlink:
    target: str


Content = str | bytes | Symlink
Files = Callable[[dict[str, Any]], dict[str, Content]]


def commit(target: Target, files: dict[str, Content], message: str) -> str:
    """A commit on top of the good one: the good tree with ``files`` written over it."""
    repo = target.repo
    git(repo, "reset", "-q", "--hard", target.good)
    git(repo, "clean", "-qfdx")
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        if isinstance(content, Symlink):
            os.symlink(content.target, path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


GOOD_DOCKERFILE = static_site(GOOD)["Dockerfile"]  # header lines 1-3, FROM on line 4


def dockerfile_with(line: str) -> Files:
    """The good Dockerfile with ``line`` right after its FROM (so on line 5)."""
    return lambda f: {"Dockerfile": GOOD_DOCKERFILE.replace(f"FROM {BASE_IMAGE}\n",
                                                            f"FROM {BASE_IMAGE}\n{line.format(**f)}\n")}


def compose_with(extra: str) -> Files:
    """A compose file whose web service (the good Dockerfile) has ``extra`` lines."""
    text = "services:\n  web:\n    build: .\n    ports:\n      - '8000'\n" + extra
    return lambda f: {"docker-compose.yml": text}


def billion_laughs(_: dict[str, Any]) -> dict[str, Content]:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    text = "\n".join(lines) + "\nservices:\n  web:\n    build: .\n    ports: ['8000']\n    command: *a8\n"
    return {"docker-compose.yml": text}


def padded(text: str, size: int) -> str:
    """``text`` with a comment line that makes it ``size`` bytes."""
    return text + "# " + "x" * (size - len(text) - 3) + "\n"


def continuations(_: dict[str, Any]) -> dict[str, Content]:
    # 50,000 continuation lines, under the size cap; the step fails at its end, so nothing deploys
    run = "RUN true \\\n" + " \\\n" * 50_000 + " && exit 3\n"
    return {"Dockerfile": GOOD_DOCKERFILE.replace("COPY public /www\n", run + "COPY public /www\n")}


def garbage(_: dict[str, Any]) -> dict[str, Content]:
    rng = random.Random(20240229)
    invalid = b"\xff\xfe\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xf8\xa1\xa1\xa1\xa1\x00"
    noise = bytes(b for b in rng.randbytes(16_384) if b not in b"\n\r\x0b\x0c\x1c\x1d\x1e#")
    return {"Dockerfile": invalid * 50 + noise}


@dataclass(frozen=True)
class Case:
    id: str
    files: Files
    # what the error says: each entry a tuple of words that must all appear (any one entry will do)
    error: tuple[tuple[str, ...], ...]
    hint: tuple[str, ...] = ()  # what the hint says (git's output, the job's log)
    never: tuple[str, ...] = field(default=())  # must appear nowhere (a leak)
    bug: dict[str, str] = field(default_factory=dict)  # route -> a known product bug (the case xfails)


def one(*words: str) -> tuple[tuple[str, ...], ...]:
    return (words,)


def refused_add(case_id: str, url: str, host: str, reason: str) -> Case:
    return Case(
        case_id,
        dockerfile_with(f"ADD {url} /x"),
        one(f"Dockerfile line 5: ADD '{url}' is refused: its host '{host}' is {reason}"),
        ("COPY",),
    )


def host_key(case_id: str, extra: str, where: str, what: str, key: str) -> Case:
    return Case(
        case_id, compose_with(extra),
        one(f"services/web/{where}: {what} hands the container the host, which this app is not allowed"),
        ("dockyard apps allow {app} " + key,),
    )


ENV_LIMIT = "more than the 256 KiB dockyard reads of such a file"

CASES = [
    Case("yaml-billion-laughs", billion_laughs,
         one("compose file line ", "expands to more than 10000 YAML nodes")),
    # libyaml stops at its own depth limit (1000) before dockyard's (64) is reached
    Case("yaml-10000-deep", lambda f: {"docker-compose.yml": "services: " + "[" * 10_000 + "]" * 10_000 + "\n"},
         (("compose file is not valid YAML: line 1, column ", "exceeded maximum nesting depth"),
          ("compose file line 1: values are nested deeper than 64 levels",))),
    Case("compose-over-cap", lambda f: {"docker-compose.yml": padded(compose_with("")(f)["docker-compose.yml"],
                                                                     300_000)},
         one("docker-compose.yml is 300000 bytes, more than the 256 KiB")),
    Case("dockerfile-over-cap", lambda f: {"Dockerfile": padded(GOOD_DOCKERFILE, 300_000)},
         one("Dockerfile is 300000 bytes, more than the 256 KiB")),
    # froze the server once; Docker's own builder refuses it (or dockyard does)
    Case("dockerfile-200kb-label", dockerfile_with("LABEL " + "a" * 200_000),
         (("Dockerfile: build failed:",), ("Dockerfile line 5",))),
    Case("dockerfile-50000-continuations", continuations,
         one("Dockerfile: build failed:", "returned a non-zero code: 3")),
    refused_add("add-dockyard-api", "http://127.0.0.1:{api_port}/api/v1/health", "127.0.0.1",
                "a loopback address of the machine itself"),
    refused_add("add-localhost", "http://localhost:{api_port}/api/v1/health", "localhost",
                "a name of the machine itself"),
    refused_add("add-cloud-metadata", "http://169.254.169.254/latest/meta-data", "169.254.169.254",
                "a link-local address (such as a cloud metadata service)"),
    refused_add("add-ipv6-loopback", "http://[::1]:80/", "::1", "a loopback address of the machine itself"),
    refused_add("add-decimal-loopback", "http://2130706433/", "2130706433", "a loopback address of the machine itself"),
    Case("header-in-other-apps-registry-path",
         lambda f: {"Dockerfile": GOOD_DOCKERFILE.replace("# dockyard.test/demo/site",
                                                          "# {registry}/{other}/web".format(**f))},
         one("Dockerfile line 1: image name '{registry}/{other}/web' is in dockyard's registry ({registry}) "
             "under '{other}', which is not this app ({app})"),
         ("{registry}/{app}/NAME",)),
    host_key("compose-privileged", "    privileged: true\n", "privileged", "privileged: true", "privileged"),
    host_key("compose-cap-add", "    cap_add: [SYS_ADMIN]\n", "cap_add", "cap_add", "cap_add"),
    host_key("compose-devices", "    devices: ['/dev/sda:/dev/sda']\n", "devices/0", "device '/dev/sda:/dev/sda'",
             "devices"),
    host_key("compose-network-mode-host", "    network_mode: host\n", "network_mode", "network_mode: 'host'",
             "network_mode"),
    host_key("compose-pid-host", "    pid: host\n", "pid", "pid: 'host'", "pid"),
    host_key("compose-ipc-host", "    ipc: host\n", "ipc", "ipc: 'host'", "ipc"),
    # the root holds the Docker socket: mounting it is a mount of the socket
    host_key("compose-volume-root", "    volumes: ['/:/host']\n", "volumes/0", "a mount of '/' (the Docker socket)",
             "docker_socket"),
    host_key("compose-volume-docker-sock", "    volumes: ['/var/run/docker.sock:/var/run/docker.sock']\n",
             "volumes/0", "a mount of '/var/run/docker.sock' (the Docker socket)", "docker_socket"),
    host_key("compose-volume-long-bind", "    volumes:\n      - {type: bind, source: /etc, target: /x}\n",
             "volumes/0", "a bind mount of the host path '/etc'", "bind_mounts"),
    Case("dockerfile-symlink-to-etc-passwd", lambda f: {"Dockerfile": Symlink("/etc/passwd")},
         one("Dockerfile: no FROM instruction"), never=("root:x:0:0",)),
    Case("dockerfile-binary-garbage", garbage, one("Dockerfile: no FROM instruction")),
    Case("env-file-outside-repo", compose_with("    env_file: ../../etc/passwd\n"),
         one("services/web/env_file/0: '../../etc/passwd' is not in the repository"),
         never=("root:x:0:0",)),
    Case("env-file-10mb", lambda f: {"big.env": "A=1\n" * (10 * 1024 * 1024 // 4),
                                     **compose_with("    env_file: big.env\n")(f)},
         one(f"big.env is 10485760 bytes, {ENV_LIMIT}")),
]

PARAMS = [
    pytest.param(case, route, id=f"{case.id}-{route}",
                 marks=[pytest.mark.xfail(strict=True, reason=case.bug[route])] if route in case.bug else [])
    for case in CASES for route in ("push", "api")
]


# -- watching the API and the world around the app ------------------------------------------------


class Prober:
    """Calls GET /api/v1/health and an authenticated GET /api/v1/apps every ~100 ms in a thread,
    and records the slowest answer (a failed call counts as its time, and is recorded)."""

    def __init__(self, server: Server, at_least: float = 1.0) -> None:
        self.server = server
        self.at_least = at_least  # a refusal can take 0.15 s: probe a second at least
        self.started = 0.0
        self.slowest = 0.0
        self.calls = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        auth = {"Authorization": f"Bearer {self.server.token}"}
        with httpx.Client(base_url=self.server.url, timeout=10) as client:
            while not self._stop.is_set():
                for path, headers in (("/api/v1/health", {}), ("/api/v1/apps", auth)):
                    started = time.monotonic()
                    try:
                        status = client.get(path, headers=headers).status_code
                    except httpx.HTTPError as exc:
                        status = 0
                        self.failures.append(f"{path}: {exc!r}")
                    self.slowest = max(self.slowest, time.monotonic() - started)
                    self.calls += 1
                    if status != 200:
                        self.failures.append(f"{path}: {status}")
                self._stop.wait(0.1)

    def __enter__(self) -> Prober:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.wait(self.started + self.at_least - time.monotonic())
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class Snapshot:
    tags: dict[str, str]  # tag -> image id
    routes: list[dict[str, Any]]
    apps: list[dict[str, Any]]
    containers: dict[str, tuple[str, str, str]]  # id -> name, image, status
    networks: dict[str, str]  # id -> name


def proxy_routes(server: Server) -> list[dict[str, Any]]:
    transport = httpx.HTTPTransport(uds=str(server.home / "proxy" / "admin.sock"))
    with httpx.Client(transport=transport, base_url="http://caddy", timeout=5) as client:
        r = client.get("/config/apps/http/servers/dockyard/routes")
        r.raise_for_status()
        return list(r.json())


def snapshot(target: Target, engine: docker.DockerClient) -> Snapshot:
    """Everything outside the app. Objects of other dockyard installations (other test sessions on
    this engine) are left out; so are tags that another session pushes to its own registry (see
    ``changes``)."""
    server, app = target.server, target.app
    mine = f"127.0.0.1:{server.registry_port}/{app}/"

    def foreign(labels: dict[str, str] | None) -> bool:
        owner = (labels or {}).get("dockyard.installation")
        return owner is not None and owner != server.installation

    tags = {t: image.id for image in engine.images.list() for t in image.tags if not t.startswith(mine)}
    routes = [r for r in proxy_routes(server) if f"-{app}." not in r.get("@id", "")]
    apps = sorted(server.api("GET", "/api/v1/apps").json(), key=lambda a: a["name"])
    containers = {c.id: (c.name, c.attrs.get("Image", ""), c.status) for c in engine.containers.list(all=True)
                  if c.labels.get("dockyard.app") != app and not foreign(c.labels)}
    networks = {n.id: n.name for n in engine.networks.list()
                if (n.attrs.get("Labels") or {}).get("dockyard.app") != app and not foreign(n.attrs.get("Labels"))}
    return Snapshot(tags, routes, apps, containers, networks)


def changes(target: Target, before: Snapshot, after: Snapshot) -> list[str]:
    found = [f"{what}: {getattr(before, what)!r} -> {getattr(after, what)!r}"
             for what in ("routes", "apps", "containers", "networks") if getattr(before, what) != getattr(after, what)]
    ours = f"127.0.0.1:{target.server.registry_port}/"
    for tag in sorted(before.tags.keys() | after.tags.keys()):
        if before.tags.get(tag) == after.tags.get(tag):
            continue
        if tag not in before.tags and tag.startswith("127.0.0.1:") and not tag.startswith(ours):
            continue  # a new tag in another test session's registry
        found.append(f"image tag {tag}: {before.tags.get(tag)} -> {after.tags.get(tag)}")
    return found


# -- running a case -------------------------------------------------------------------------------


def jobs(server: Server, app: str) -> list[dict[str, Any]]:
    r = server.api("GET", "/api/v1/jobs", params={"app": app})
    assert r.status_code == 200, r.text
    return list(r.json())


def job_log(server: Server, job_id: int) -> str:
    return server.api("GET", f"/api/v1/jobs/{job_id}/logs").text


def remote_head(target: Target, branch: str) -> str:
    out = subprocess.run(["git", "ls-remote", target.server.remote(target.app), f"refs/heads/{branch}"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return out.split()[0] if out.strip() else ""


def reset_main(target: Target) -> None:
    """Put the good commit back on the deploy branch when a case landed there."""
    if remote_head(target, "main") == target.good:
        return
    pushed = subprocess.run(["git", "push", "--force", target.server.remote(target.app), f"{target.good}:refs/heads/main"],
                            cwd=target.repo, capture_output=True, text=True, timeout=300)
    assert pushed.returncode == 0, pushed.stderr
    assert remote_head(target, "main") == target.good


def matches(text: str, expected: tuple[tuple[str, ...], ...]) -> bool:
    return any(all(word in text for word in words) for words in expected)


def formatted(words: tuple[str, ...], fields: dict[str, Any]) -> tuple[str, ...]:
    return tuple(w.format(**fields) for w in words)


@pytest.mark.parametrize(("case", "route"), PARAMS)
def test_hostile_input_is_refused_and_harmless(
    target: Target, engine: docker.DockerClient, case: Case, route: str
) -> None:
    server, app = target.server, target.app
    error = tuple(formatted(words, target.fields) for words in case.error)
    hint = formatted(case.hint, target.fields)
    live = target.live_release()
    assert live is not None and server.body(f"{app}.localhost") == GOOD + "\n"
    last_job = max((j["id"] for j in jobs(server, app)), default=0)
    before = snapshot(target, engine)
    assert any(f"-{target.other}." in r.get("@id", "") for r in before.routes)  # the bystander is watched
    assert any(target.other in name for name, _, _ in before.containers.values())
    hostile = commit(target, case.files(target.fields), f"hostile {case.id} through {route}")
    try:
        with Prober(server) as probe:
            started = time.monotonic()
            if route == "push":  # the deploy branch: the pre-receive hook checks it
                pushed = server.push(target.repo, app, "HEAD:refs/heads/main", "--force")
                output = pushed.stderr
            else:  # a side branch is stored unchecked; then the API deploys it
                pushed = server.push(target.repo, app, "HEAD:refs/heads/hostile", "--force")
                assert pushed.returncode == 0 and "hostile stored" in pushed.stderr, pushed.stderr
                r = server.api("POST", f"/api/v1/apps/{app}/deploys", json={"branch": "hostile"})
                assert r.status_code == 202 and r.json()["payload"]["commit"] == hostile, r.text
                job_id = r.json()["id"]
                wait_until(lambda: server.api("GET", f"/api/v1/jobs/{job_id}").json()["finished_at"], 60,
                           f"deploy job {job_id} to finish")
                output = job_log(server, job_id)
            elapsed = time.monotonic() - started
        _slowest_seen.append(probe.slowest)

        # 1. a clear error, recorded as a failed job
        new = [j for j in jobs(server, app) if j["id"] > last_job]
        assert [j["status"] for j in new] == ["failed"], new
        failed = new[0]
        print(f"\n{case.id} ({route}, {elapsed:.2f}s, API slowest {probe.slowest * 1000:.0f} ms over {probe.calls} "
              f"calls; {failed['kind']} job error of {len(failed['error'] or '')} chars): {failed['error'][:300]!r}")
        if route == "api":
            assert failed["id"] == job_id and failed["kind"] == "deploy"
        elif "Push rejected" in output:  # refused by the pre-receive hook
            assert pushed.returncode != 0 and failed["kind"] == "push"
        else:  # accepted by the hook, failed in the deploy job that git's output follows
            assert failed["kind"] == "deploy" and f"job {failed['id']} failed" in output, output[-3000:]
        assert failed["error"] and matches(failed["error"], error), (error, failed["error"][:3000])
        assert len(failed["error"]) < 2100, "a job's error is cut to a readable length"
        assert matches(output, error), (error, output[-3000:])
        for words in hint:
            assert words in output, (words, output[-3000:])
        assert "Nothing was deployed" in output or "Nothing was released" in output, output[-3000:]
        for leak in case.never:
            assert leak not in output and leak not in failed["error"]

        # 2. the API answered quickly all along
        assert not probe.failures, probe.failures[:5]
        assert probe.calls >= 6, (probe.calls, elapsed)
        assert probe.slowest < SLOWEST_ALLOWED, f"the API took {probe.slowest:.2f}s to answer ({case.id}, {route})"

        # 3. the previous release still serves
        assert server.body(f"{app}.localhost") == GOOD + "\n"
        assert target.live_release() == live

        # 4. nothing outside the app changed (a build's own containers may take a moment to go)
        with contextlib.suppress(AssertionError):  # what changed is reported precisely below
            wait_until(lambda: not changes(target, before, snapshot(target, engine)), 15, "nothing else to change")
        assert changes(target, before, snapshot(target, engine)) == []
    finally:
        reset_main(target)
    assert server.body(f"{app}.localhost") == GOOD + "\n"


# -- not errors -----------------------------------------------------------------------------------


def test_pushed_gitattributes_do_not_change_what_is_built(server: Server, app_name: str, tmp_path: Path) -> None:
    """`git archive` would drop the Dockerfile (export-ignore) and rewrite `$Format:%H$`
    (export-subst); the build context is the commit as it is."""
    server.cli("apps", "create", app_name)
    page = "commit $Format:%H$ as committed\n"
    files = static_site("unused")
    files["public/index.html"] = page
    files[".gitattributes"] = "Dockerfile export-ignore\npublic/index.html export-subst\n"
    pushed = server.push(make_repo(tmp_path / "src", files), app_name)
    assert pushed.returncode == 0, pushed.stderr
    assert server.body(f"{app_name}.localhost") == page


def test_a_symlink_to_a_host_file_does_not_serve_the_host_file(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", static_site("has a link"))
    os.symlink("/etc/hostname", repo / "public" / "link")
    make_repo(repo, {})
    assert git(repo, "ls-files", "-s", "public/link").startswith("120000")  # committed as a symlink
    pushed = server.push(repo, app_name)
    assert pushed.returncode == 0, pushed.stderr
    assert server.body(f"{app_name}.localhost") == "has a link\n"
    host = Path("/etc/hostname").read_text()
    served = server.get(f"{app_name}.localhost", "/link")
    print(f"\n/link answers {served.status_code}: {served.text[:100]!r} (the host's /etc/hostname: {host.strip()!r})")
    assert host.strip() and host.strip() not in served.text
    if served.status_code != 404:  # served: the link's target inside the container, nothing else
        assert served.status_code == 200
        running = [c for c in engine.containers.list(filters={"label": f"dockyard.app={app_name}"})]
        assert len(running) == 1
        inside = running[0].exec_run(["cat", "/etc/hostname"]).output.decode()
        assert served.text == inside
