"""One contract per port, run against the in-memory fake and the real adapter alike, so the fakes
the unit tests rely on behave as Caddy, Distribution and git do."""

from __future__ import annotations

import http.server
import io
import itertools
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import docker
import docker.errors
import httpx
import pytest

from dockyard.adapters.caddy import CaddyProxy
from dockyard.adapters.dataplane import DataPlane
from dockyard.adapters.docker_builder import DockerBuilder
from dockyard.adapters.git import GitRepos
from dockyard.adapters.registry import DistributionRegistry
from dockyard.adapters.upstream_dns import UpstreamNames
from dockyard.domain.errors import Unavailable
from dockyard.domain.model import Route
from dockyard.domain.published_ports import PortRoute
from dockyard.fakes import FakeBuilder, FakeProxy, FakeRegistry, FakeRepos
from dockyard.ports import ImageBuilder, Proxy, Registry, SourceRepos
from tests.support import BASE_IMAGE, free_port, make_repo, wait_until

pytestmark = pytest.mark.integration

ROUTE_PREFIX = "dytest-contract"


def by_id(routes: object) -> dict[str, Route]:
    assert isinstance(routes, (list, tuple))
    return {r.id: r for r in routes}


def new_plane(engine: docker.DockerClient) -> DataPlane:
    """A data plane of an installation of its own, so that tests never share containers."""
    return DataPlane(engine, f"contract{uuid.uuid4().hex[:8]}", "dytest-contract")


def remove_plane(engine: docker.DockerClient, plane: DataPlane) -> None:
    for c in engine.containers.list(all=True, filters={"label": f"dockyard.installation={plane.installation}"}):
        c.remove(force=True)


# -- Proxy ----------------------------------------------------------------------------------------
@pytest.fixture
def caddy(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[CaddyProxy]:
    # a short root: the admin API is a unix socket, and socket paths are limited to 108 bytes
    plane = new_plane(engine)
    root = tmp_path_factory.mktemp("caddy")
    names = UpstreamNames(root / "upstreams", free_port(), plane)
    proxy = CaddyProxy(root, "127.0.0.1", free_port(), ROUTE_PREFIX, plane, names)
    proxy.ensure_running()
    try:
        yield proxy
    finally:
        assert proxy.remove()
        assert not proxy.running and plane.find("proxy") is None and plane.find("resolver") is None
        remove_plane(engine, plane)


@pytest.fixture(params=["fake", "caddy"])
def proxy(request: pytest.FixtureRequest) -> Proxy:
    if request.param == "fake":
        fake = FakeProxy()
        fake.ensure_running()
        return fake
    real: CaddyProxy = request.getfixturevalue("caddy")
    return real


def route(name: str, *upstreams: str, hosts: tuple[str, ...] | None = None) -> Route:
    return Route(f"{ROUTE_PREFIX}-{name}", hosts or (f"{name}.contract.test",), upstreams)


def test_proxy_starts_with_no_routes_and_lists_what_is_set(proxy: Proxy) -> None:
    assert list(proxy.routes()) == []  # the fallback route is the proxy's own, never listed
    web = route("shop-web", "127.0.0.1:7001", hosts=("shop.contract.test", "www.shop.example"))
    api = route("shop-api", "127.0.0.1:7002", "127.0.0.1:7003")
    proxy.set_route(web)
    proxy.set_route(api)
    assert by_id(proxy.routes()) == {web.id: web, api.id: api}


def test_proxy_replaces_a_route_with_the_same_id(proxy: Proxy) -> None:
    proxy.set_route(route("shop-web", "127.0.0.1:7001"))
    other = route("blog-web", "127.0.0.1:7005")
    proxy.set_route(other)
    moved = route("shop-web", "127.0.0.1:7009", hosts=("shop.contract.test", "shop.example"))
    proxy.set_route(moved)
    routes = list(proxy.routes())
    assert len(routes) == 2, routes
    assert by_id(routes) == {moved.id: moved, other.id: other}


def test_proxy_removes_routes_and_ignores_unknown_ones(proxy: Proxy) -> None:
    keep, gone = route("a-web", "127.0.0.1:7001"), route("b-web", "127.0.0.1:7002")
    proxy.set_route(keep)
    proxy.set_route(gone)
    proxy.remove_route(gone.id)
    assert by_id(proxy.routes()) == {keep.id: keep}
    proxy.remove_route(gone.id)  # again: already gone
    proxy.remove_route(f"{ROUTE_PREFIX}-never-was")
    assert by_id(proxy.routes()) == {keep.id: keep}


def test_proxy_ensure_running_again_keeps_the_routes(proxy: Proxy) -> None:
    web = route("shop-web", "127.0.0.1:7001")
    proxy.set_route(web)
    proxy.ensure_running()
    assert by_id(proxy.routes()) == {web.id: web}


class _Upstream:
    """A tiny HTTP/1.1 server (keep-alive) on a free port, or on ``host:port``, that answers every
    GET with its name."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        body = f"{name}\n".encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Seen-Host", self.headers.get("Host", ""))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.address = f"{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def upstreams() -> Iterator[tuple[_Upstream, _Upstream]]:
    one, two = _Upstream("one"), _Upstream("two")
    try:
        yield one, two
    finally:
        one.close()
        two.close()


def test_caddy_sends_traffic_by_host_to_the_routed_upstream(
    caddy: CaddyProxy, upstreams: tuple[_Upstream, _Upstream]
) -> None:
    one, two = upstreams

    def get(host: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{caddy.port}/", headers={"Host": host}, timeout=5)

    unknown = get("nobody.contract.test")
    assert unknown.status_code == 404 and "no app answers" in unknown.text

    caddy.set_route(route("shop-web", one.address, hosts=("shop.contract.test", "shop.example")))
    r = get("shop.contract.test")
    assert (r.status_code, r.text) == (200, "one\n")
    assert r.headers["X-Seen-Host"] == "shop.contract.test"  # the Host is passed through
    assert get("shop.example").text == "one\n"
    assert get("nobody.contract.test").status_code == 404  # the fallback still catches the rest

    caddy.set_route(route("shop-web", two.address, hosts=("shop.contract.test",)))
    assert get("shop.contract.test").text == "two\n"
    assert get("shop.example").status_code == 404  # the replaced route no longer names that host

    caddy.remove_route(route("shop-web").id)
    gone = get("shop.contract.test")
    assert gone.status_code == 404 and "no app answers" in gone.text


def test_caddy_moves_a_route_between_containers_by_name_without_a_reload_and_drops_nothing(
    caddy: CaddyProxy,
) -> None:
    """A release's switch: the route's containers (same port, other addresses) change by name
    only, so Caddy's configuration stays as it was and keep-alive clients see no closed
    connection; the new containers answer within a few tenths of a second."""
    import http.client

    port = free_port()
    one, two = _Upstream("one", "127.0.0.2", port), _Upstream("two", "127.0.0.3", port)
    stop, failures, seen, count = threading.Event(), [], set(), [0]

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", caddy.port, timeout=10)
        while not stop.is_set():
            try:
                conn.request("GET", "/", headers={"Host": "shop.contract.test"})
                answer = conn.getresponse()
                text = answer.read().decode()
                if answer.status != 200:
                    failures.append(f"{answer.status}: {text[:100]}")
                seen.add(text)
                count[0] += 1
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", caddy.port, timeout=10)
        conn.close()

    def alone(name: str) -> bool:
        """Only ``name`` answered since the last look."""
        answered = set(seen)
        seen.clear()
        return answered == {f"{name}\n"}

    try:
        caddy.set_route(route("shop-web", one.address, hosts=("shop.contract.test",)))
        config = caddy._call("GET", "/config/").json()
        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        reactions = []
        for target in (two, one, two, one, two, one):
            caddy.set_route(route("shop-web", target.address, hosts=("shop.contract.test",)))
            switched = time.monotonic()
            wait_until(lambda t=target: alone(t.name), 5, "the new container to answer alone", interval=0.01)
            reactions.append(time.monotonic() - switched)
            time.sleep(0.2)
        stop.set()
        for thread in clients:
            thread.join(timeout=10)
        assert caddy._call("GET", "/config/").json() == config  # no reload: the same configuration
        assert failures == [] and count[0] > 100, (failures[:5], count[0])
        print("reactions", [round(r, 3) for r in reactions])
        assert max(reactions) < 1.0, reactions
        assert by_id(caddy.routes())[route("shop-web").id].upstreams == (one.address,)
    finally:
        stop.set()
        one.close()
        two.close()


def test_caddy_takes_containers_named_by_dns_in_turn(caddy: CaddyProxy) -> None:
    """A service's replicas share a port: the route names them by DNS, and each takes its turn."""
    port = free_port()
    ups = [_Upstream(f"u{i}", f"127.0.0.{i}", port) for i in (2, 3, 4)]
    try:
        caddy.set_route(route("shop-web", *(u.address for u in ups), hosts=("shop.contract.test",)))
        seen = [httpx.get(f"http://127.0.0.1:{caddy.port}/", headers={"Host": "shop.contract.test"}, timeout=5).text
                for _ in range(9)]
        assert sorted(seen) == sorted(f"u{i}\n" for i in (2, 3, 4) for _ in range(3)), seen
    finally:
        for u in ups:
            u.close()


def test_caddy_spreads_a_routes_traffic_over_all_its_upstreams_round_robin(
    caddy: CaddyProxy, upstreams: tuple[_Upstream, _Upstream]
) -> None:
    """A service's replicas: one route, every replica an upstream; and a published port alike."""
    one, two = upstreams
    caddy.set_route(route("shop-web", one.address, two.address, hosts=("shop.contract.test",)))
    seen = [httpx.get(f"http://127.0.0.1:{caddy.port}/", headers={"Host": "shop.contract.test"}, timeout=5).text
            for _ in range(6)]
    assert sorted(set(seen)) == ["one\n", "two\n"] and all(a != b for a, b in itertools.pairwise(seen))
    port = free_port()
    caddy.set_port(port_route(port, one.address, two.address))
    seen = [httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text for _ in range(4)]
    assert sorted(set(seen)) == ["one\n", "two\n"]
    assert {p.id: p.upstreams for p in caddy.ports()} == {port_route(port).id: (one.address, two.address)}
    caddy.remove_port(port_route(port).id)


# -- Proxy: published host ports ------------------------------------------------------------------
def port_route(port: int, *upstreams: str, owner: str = "dytest-contract-shop.web", host: str = "") -> PortRoute:
    return PortRoute(f"{ROUTE_PREFIX}-port-{port}", port, upstreams, owner, host)


def test_proxy_sets_lists_replaces_and_removes_published_ports(proxy: Proxy) -> None:
    assert list(proxy.ports()) == []
    one, two = free_port(), free_port()
    web = port_route(one, "127.0.0.1:7001")
    local = port_route(two, "127.0.0.1:7002", owner="dytest-contract-shop--recette.api", host="127.0.0.1")
    proxy.set_port(web)
    proxy.set_port(local)
    assert sorted(proxy.ports(), key=lambda p: p.port) == sorted([web, local], key=lambda p: p.port)
    moved = port_route(one, "127.0.0.1:7009", owner="dytest-contract-shop.admin")
    proxy.set_port(moved)  # the same id: replaced in place
    assert sorted(proxy.ports(), key=lambda p: p.port) == sorted([moved, local], key=lambda p: p.port)
    assert list(proxy.routes()) == []  # host-name routes are another thing
    proxy.remove_port(moved.id)
    proxy.remove_port(moved.id)  # again: already gone
    proxy.remove_port(f"{ROUTE_PREFIX}-port-1")
    assert list(proxy.ports()) == [local]
    proxy.ensure_running()  # ports survive a reconfiguration of the proxy
    assert list(proxy.ports()) == [local]


def test_proxy_holds_a_port_it_serves_and_refuses_one_held_elsewhere(proxy: Proxy) -> None:
    port = free_port()
    assert proxy.host_port_free(port, "tcp")
    proxy.set_port(port_route(port, "127.0.0.1:7001"))
    assert not proxy.host_port_free(port, "tcp")
    with pytest.raises(Unavailable, match=f"port {port}"):
        proxy.set_port(PortRoute(f"{ROUTE_PREFIX}-port-other", port, ("127.0.0.1:7002",)))  # one listener per port
    proxy.remove_port(port_route(port).id)
    wait_until(lambda: proxy.host_port_free(port, "tcp"), 10, f"port {port} to be free again")

    held = free_port()
    with socket.socket() as other, socket.socket(type=socket.SOCK_DGRAM) as datagrams:
        other.bind(("0.0.0.0", held))
        other.listen()
        datagrams.bind(("0.0.0.0", held))
        if isinstance(proxy, FakeProxy):  # what a real program holds, scripted
            proxy.held |= {(held, "tcp"), (held, "udp")}
        assert not proxy.host_port_free(held, "tcp") and not proxy.host_port_free(held, "udp")
        with pytest.raises(Unavailable, match=f"port {held}"):
            proxy.set_port(port_route(held, "127.0.0.1:7001"))
    assert list(proxy.ports()) == []


def test_caddy_serves_a_published_port_and_switches_its_upstream(
    caddy: CaddyProxy, upstreams: tuple[_Upstream, _Upstream]
) -> None:
    one, two = upstreams
    port = free_port()
    caddy.set_port(port_route(port, one.address))
    caddy.set_route(route("shop-web", two.address, hosts=("shop.contract.test",)))
    r = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "anything.example"}, timeout=5)
    assert (r.status_code, r.text, r.headers["X-Seen-Host"]) == (200, "one\n", "anything.example")
    caddy.set_port(port_route(port, two.address))
    assert httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text == "two\n"
    shop = httpx.get(f"http://127.0.0.1:{caddy.port}/", headers={"Host": "shop.contract.test"}, timeout=5)
    assert shop.text == "two\n"  # the host routes are untouched
    config = caddy._call("GET", f"/config/apps/http/servers/{ROUTE_PREFIX}-port-{port}").json()
    assert config["listen"] == [f":{port}"] and config["automatic_https"] == {"disable": True}
    caddy.remove_port(port_route(port).id)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=5)


# -- Registry -------------------------------------------------------------------------------------
@pytest.fixture
def distribution(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[DistributionRegistry]:
    plane = new_plane(engine)
    registry = DistributionRegistry(tmp_path_factory.mktemp("registry"), "127.0.0.1", free_port(), plane)
    registry.ensure_running()
    try:
        yield registry
    finally:
        registry.remove()
        remove_plane(engine, plane)


@dataclass
class RegistrySide:
    registry: Registry
    builder: ImageBuilder
    built: list[str] = field(default_factory=list)


@pytest.fixture(params=["fake", "distribution"])
def registry_side(request: pytest.FixtureRequest) -> Iterator[RegistrySide]:
    if request.param == "fake":
        fake = FakeRegistry()
        fake.ensure_running()
        yield RegistrySide(fake, FakeBuilder(fake))
        return
    engine: docker.DockerClient = request.getfixturevalue("engine")
    registry: DistributionRegistry = request.getfixturevalue("distribution")
    side = RegistrySide(registry, DockerBuilder(engine, registry.auth))
    try:
        yield side
    finally:
        for image_id in side.built:
            try:
                engine.images.remove(image_id, force=True)
            except docker.errors.NotFound:
                pass
        for image_id in side.built:
            with pytest.raises(docker.errors.ImageNotFound):
                engine.images.get(image_id)


def tar_of(files: dict[str, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build_unique(side: RegistrySide) -> str:
    """A tiny image that no other build shares: FROM the base image with a label of its own."""
    dockerfile = f"FROM {BASE_IMAGE}\nLABEL dockyard.test.unique={uuid.uuid4().hex}\n"
    lines: list[str] = []
    image_id = side.builder.build(tar_of({"Dockerfile": dockerfile}), "Dockerfile", "", lines.append)
    side.built.append(image_id)
    assert image_id.startswith("sha256:") and len(image_id) == 71, image_id
    assert lines, "the build reports progress"
    return image_id


def test_registry_unknown_repository_or_tag_is_free(registry_side: RegistrySide) -> None:
    assert registry_side.registry.config_digest("contract/nothing-here", "1.0") is None


def test_registry_pushed_tag_is_bound_to_the_image_id(registry_side: RegistrySide) -> None:
    registry, builder = registry_side.registry, registry_side.builder
    repository = f"contract/app{uuid.uuid4().hex[:8]}"
    first = build_unique(registry_side)
    reference = f"{registry.address}/{repository}:1.0"
    builder.tag(first, reference)
    pushed: list[str] = []
    digest = builder.push(reference, pushed.append)
    assert digest.startswith("sha256:") and len(digest) == 71 and digest != first
    assert registry.config_digest(repository, "1.0") == first
    assert registry.config_digest(repository, "1.1") is None
    assert builder.size(first) > 0

    # the same image under another tag is the same manifest
    builder.tag(first, f"{registry.address}/{repository}:latest")
    assert builder.push(f"{registry.address}/{repository}:latest", pushed.append) == digest

    # a tag pushed again with another image moves: config_digest is how dockyard notices
    second = build_unique(registry_side)
    assert second != first
    builder.tag(second, reference)
    assert builder.push(reference, pushed.append) != digest
    assert registry.config_digest(repository, "1.0") == second
    assert registry.config_digest(repository, "latest") == first


def test_registry_refuses_a_port_that_another_registry_serves(
    distribution: DistributionRegistry, tmp_path: Path, engine: docker.DockerClient
) -> None:
    intruder = DistributionRegistry(tmp_path / "second", "127.0.0.1", distribution.port, new_plane(engine))
    with pytest.raises(Unavailable, match="already answers"):
        intruder.ensure_running()
    assert intruder.plane.find("registry") is None  # it did not even try
    assert distribution.config_digest("contract/nothing-here", "1.0") is None  # the first one still serves


def test_registry_fails_clearly_when_its_port_is_taken(tmp_path: Path, engine: docker.DockerClient) -> None:
    plane = new_plane(engine)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()  # accepts connections, never answers
        registry = DistributionRegistry(tmp_path / "registry", "127.0.0.1", squatter.getsockname()[1], plane)
        try:
            with pytest.raises(Unavailable) as caught:
                registry.ensure_running()
        finally:
            remove_plane(engine, plane)
    assert registry.address in caught.value.message
    assert "DOCKYARD_REGISTRY_PORT" in caught.value.hint


# -- SourceRepos ----------------------------------------------------------------------------------
@dataclass
class ReposSide:
    repos: SourceRepos
    push: Callable[[str, dict[str, str]], str]  # (app, files) -> the commit now on main


@pytest.fixture(params=["fake", "git"])
def repos_side(request: pytest.FixtureRequest, tmp_path: Path) -> ReposSide:
    if request.param == "fake":
        fake = FakeRepos()
        return ReposSide(fake, lambda app, files: fake.commit(app, files))
    real = GitRepos(tmp_path / "repos", max_push_bytes=10 * 1024 * 1024)

    def push(app: str, files: dict[str, str]) -> str:
        work = make_repo(tmp_path / "work" / app, files)
        # dockyard's hooks call its API, not running here: git receives without them
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        done = subprocess.run(["git", "push", "-q", "--receive-pack=git -c core.hooksPath=/dev/null receive-pack",
                               str(real.path(app)), "main"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True,
                              check=True).stdout.strip()

    return ReposSide(real, push)


FILES = {
    "Dockerfile": f"FROM {BASE_IMAGE}\nCOPY public /www\nEXPOSE 8000\n",
    "public/index.html": "<h1>hello</h1>\n",
    "README.md": "a contract\n",
}


def test_repos_create_exists_delete(repos_side: ReposSide) -> None:
    repos = repos_side.repos
    assert not repos.exists("contract-app")
    repos.create("contract-app")
    assert repos.exists("contract-app")
    repos.create("contract-app")  # again: harmless
    assert repos.exists("contract-app")
    assert not repos.exists("other-app")
    repos.delete("contract-app")
    assert not repos.exists("contract-app")
    repos.delete("contract-app")  # again: harmless


def test_repos_commits_lists_what_a_commit_brings_newest_first(repos_side: ReposSide) -> None:
    repos = repos_side.repos
    repos.create("contract-app")
    first = repos_side.push("contract-app", FILES)
    second = repos_side.push("contract-app", {**FILES, "README.md": "two\n"})
    third = repos_side.push("contract-app", {**FILES, "README.md": "three\n"})
    assert [c for c, _ in repos.commits("contract-app", third, first)] == [third, second]
    assert [c for c, _ in repos.commits("contract-app", third)] == [third, second, first]
    assert [c for c, _ in repos.commits("contract-app", third, limit=1)] == [third]
    assert repos.commits("contract-app", third, third) == []
    times = [t for _, t in repos.commits("contract-app", third)]
    assert all(abs(t - time.time()) < 600 for t in times)  # Unix seconds, the commits' own
    assert [c for c, _ in repos.commits("contract-app", second, "f" * 40)][:1] == [second]  # unknown: itself


def test_repos_new_repository_has_no_head(repos_side: ReposSide) -> None:
    repos_side.repos.create("contract-app")
    assert repos_side.repos.head("contract-app", "main") is None


def test_repos_pushed_commit_is_read_back(repos_side: ReposSide) -> None:
    repos = repos_side.repos
    repos.create("contract-app")
    commit = repos_side.push("contract-app", FILES)
    assert len(commit) == 40 and all(c in "0123456789abcdef" for c in commit)
    assert repos.head("contract-app", "main") == commit
    assert repos.head("contract-app", "no-such-branch") is None
    assert sorted(repos.files("contract-app", commit)) == sorted(FILES)
    assert repos.read("contract-app", commit, "Dockerfile") == FILES["Dockerfile"]
    assert repos.read("contract-app", commit, "public/index.html") == FILES["public/index.html"]
    assert repos.read("contract-app", commit, "missing.txt") is None
    assert repos.read("contract-app", commit, "public") is None  # a directory is not a file


def test_repos_archive_is_a_tar_of_the_commit(repos_side: ReposSide) -> None:
    repos = repos_side.repos
    repos.create("contract-app")
    commit = repos_side.push("contract-app", FILES)
    # a real file, as the Deployer passes: GitRepos.archive hands it to git as its stdout
    with tempfile.TemporaryFile() as out:
        repos.archive("contract-app", commit, out)
        out.seek(0)
        contents = read_tar(out)
    assert contents == FILES


def read_tar(out: IO[bytes]) -> dict[str, str]:
    with tarfile.open(fileobj=out) as tar:
        contents = {}
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                contents[member.name] = extracted.read().decode()
    return contents


def test_repos_second_push_moves_head_and_keeps_the_first_commit(repos_side: ReposSide) -> None:
    repos = repos_side.repos
    repos.create("contract-app")
    first = repos_side.push("contract-app", FILES)
    second = repos_side.push("contract-app", {**FILES, "public/index.html": "<h1>v2</h1>\n", "NEW": "new\n"})
    assert second != first
    assert repos.head("contract-app", "main") == second
    assert repos.read("contract-app", first, "public/index.html") == "<h1>hello</h1>\n"
    assert repos.read("contract-app", second, "public/index.html") == "<h1>v2</h1>\n"
    assert "NEW" in repos.files("contract-app", second) and "NEW" not in repos.files("contract-app", first)
