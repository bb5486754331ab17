"""The data plane outlives the control plane: the proxy and the registry are containers of their
own, so apps keep answering while `dockyard server` is killed, restarted or upgraded; Docker
restarts a crashed proxy with its routes; routes follow a container that Docker restarts."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx
import pytest

from tests.support import Server, make_repo, static_site, sweep, wait_until


@dataclass
class Load:
    """``clients`` threads calling one host through the proxy as fast as they can, counting by step."""

    server: Server
    host: str
    clients: int = 4
    step: str = "warm-up"
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.server.proxy_port}", headers={"Host": self.host},
                          timeout=5) as client:
            while not self.stop.is_set():
                step = self.step
                try:
                    r = client.get("/")
                    good = r.status_code == 200 and r.text == "steady\n"
                except httpx.HTTPError as exc:
                    good, r = False, None
                    self.errors.append(f"{step}: {exc!r}")
                if good:
                    self.ok[step] += 1
                else:
                    self.failed[step] += 1
                    if r is not None:
                        self.errors.append(f"{step}: HTTP {r.status_code} {r.text[:80]!r}")

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)

    def during(self, step: str, seconds: float = 1.0) -> None:
        self.step = step
        time.sleep(seconds)


def test_apps_keep_serving_while_the_server_is_killed_restarted_and_upgraded(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    server.cli("apps", "create", app_name)
    assert server.push(make_repo(tmp_path / "src", static_site("steady")), app_name).returncode == 0
    with Load(server, f"{app_name}.localhost") as load:
        load.during("before", 1.0)
        load.step = "kill -9"
        server.stop(signal.SIGKILL)
        load.during("kill -9", 1.5)  # nobody runs the control plane
        load.step = "restart"
        server.start()  # adopts the running proxy and registry
        load.during("restart", 1.0)
        load.step = "stop+start"
        server.stop()  # as an upgrade would: SIGTERM, then the new version starts
        load.during("stop+start", 0.5)
        server.start()
        load.during("after", 1.0)
    steps = ("before", "kill -9", "restart", "stop+start", "after")
    assert sum(load.failed.values()) == 0, (dict(load.failed), load.errors[:5])
    assert all(load.ok[s] > 0 for s in steps), dict(load.ok)
    print(f"\nload through the proxy, 4 clients: ok {dict(load.ok)}, failed {dict(load.failed)}")


def test_system_shows_the_data_plane_the_engine_and_the_pool(
    server: Server, app_name: str, engine: docker.DockerClient
) -> None:
    server.cli("apps", "create", app_name)
    info = server.api("GET", "/api/v1/system").json()
    prefix = f"{server.env['DOCKYARD_NAME_PREFIX']}-{server.installation}"
    assert info["installation"] == server.installation
    for role in ("proxy", "registry", "resolver"):
        part = info["data_plane"][role]
        container = engine.containers.get(part["container"])
        assert part["container"] == f"{prefix}-{role}" and part["running"] is True
        assert container.labels["dockyard.role"] == role and part["image"] == container.attrs["Config"]["Image"]
    assert info["data_plane"]["registry"]["listens"] == f"127.0.0.1:{server.registry_port}"
    assert info["data_plane"]["resolver"]["listens"] == f"udp/127.0.0.1:{server.resolver_port}"
    assert info["engine"]["live_restore"] == engine.info()["LiveRestoreEnabled"]
    pool = info["network_pool"]
    assert (pool["pool"], pool["prefix"], pool["capacity"]) == ("10.213.0.0/16", 26, 1024)
    assert 1 <= pool["used"] <= 1024  # this app's network at least
    out = server.cli("system").stdout
    assert f"{prefix}-proxy" in out and f"{prefix}-registry" in out and "running" in out
    assert "engine live-restore:" in out and "of 1024 networks used" in out
    assert httpx.get(f"{server.url}/api/v1/system").status_code == 401  # needs a token


def test_a_crashed_proxy_is_restarted_by_docker_with_its_routes(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    server.cli("apps", "create", app_name)
    assert server.push(make_repo(tmp_path / "src", static_site("still routed")), app_name).returncode == 0
    proxy = engine.containers.get(f"{server.env['DOCKYARD_NAME_PREFIX']}-{server.installation}-proxy")
    registry = engine.containers.get(f"{server.env['DOCKYARD_NAME_PREFIX']}-{server.installation}-registry")
    for container in (proxy, registry):
        assert container.labels["dockyard.installation"] == server.installation
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)  # a crash, as Docker sees one
    wait_until(lambda: server.body(f"{app_name}.localhost") == "still routed\n", 30, "the route to come back")
    proxy.reload()
    assert proxy.attrs["RestartCount"] >= 1
    health = wait_until(lambda: (h := server.api("GET", "/api/v1/health").json())["registry"]["running"] and h,
                        30, "the registry to run again")
    assert health["proxy"]["running"]
    repo = make_repo(tmp_path / "src", static_site("pushed after the registry came back", version="1.1"))
    assert server.push(repo, app_name).returncode == 0
    assert server.body(f"{app_name}.localhost") == "pushed after the registry came back\n"


def test_routes_follow_a_container_that_comes_back_under_another_address(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    server.cli("apps", "create", app_name)
    assert server.push(make_repo(tmp_path / "src", static_site("moved")), app_name).returncode == 0
    web = engine.containers.list(filters={"label": [f"dockyard.installation={server.installation}",
                                                     f"dockyard.app={app_name}"]})[0]
    network = next(iter(web.attrs["NetworkSettings"]["Networks"]))
    before = web.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
    web.stop(timeout=1)
    # another container takes the address, so the app's comes back under a new one
    squatter = engine.containers.run("dockyard/busybox:local", ["sleep", "60"], detach=True, network=network,
                                     labels={"dockyard.test": "squatter"})
    try:
        web.start()
        web.reload()
        after = web.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        assert after != before
        started = time.monotonic()
        wait_until(lambda: server.body(f"{app_name}.localhost") == "moved\n", 10, "the route to follow")
        print(f"\nroute followed the new address in {time.monotonic() - started:.2f}s")
    finally:
        squatter.remove(force=True)


def test_server_down_stops_the_data_plane_and_server_brings_it_back(
    tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient, tmp_path: Path
) -> None:
    home = tmp_path_factory.mktemp("down-home")
    home.chmod(0o755)
    srv = Server(home)
    srv.start()
    # DOCKYARD_HOME holds the database, the registry's password and the repos: its owner's only
    assert (home.stat().st_mode & 0o777, (home / "dockyard.db").stat().st_mode & 0o777) == (0o700, 0o600)
    assert (home / "registry" / "password").stat().st_mode & 0o077 == 0
    try:
        srv.cli("apps", "create", "downtest")
        assert srv.push(make_repo(tmp_path / "src", static_site("back again")), "downtest").returncode == 0
        out = srv.down().stdout
        assert "proxy: stopped and removed" in out and "registry: stopped and removed" in out
        assert srv.proc is not None and srv.proc.wait(timeout=5) is not None  # the server stopped too
        assert not engine.containers.list(all=True, filters={"label": [
            f"dockyard.installation={srv.installation}", "dockyard.role"]})
        srv.start()
        assert srv.body("downtest.localhost") == "back again\n"  # routes restored from the store
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.api("DELETE", "/api/v1/apps/downtest")
        srv.stop()
        sweep(engine, srv.installation)
