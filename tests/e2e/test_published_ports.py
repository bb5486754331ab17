"""Published host ports on a real server: an HTTP port (``"PORT:8000"``) is served by the proxy on
that host port and stays up through a redeploy under load; a port another app publishes, or that
another program holds, is refused at push; a UDP port is published by Docker, stop-first."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx

from tests.support import Server, free_port, get_resending, make_repo, static_site, wait_until


def stack(ports: str, text: str = "steady", marker: str = "1") -> dict[str, str]:
    """The static site (httpd on 8000) as a compose service with these ``ports``; ``marker``
    changes the service (an environment variable), not what it answers."""
    compose = f"services:\n  web:\n    build: .\n    ports: {ports}\n    environment: {{MARKER: '{marker}'}}\n"
    return {**static_site(text), "docker-compose.yml": compose}


def answer(port: int) -> str:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    except httpx.HTTPError as exc:
        return f"<{type(exc).__name__}>"
    return r.text if r.status_code == 200 else f"<{r.status_code}>"


def containers(engine: docker.DockerClient, server: Server, app: str) -> list:
    return engine.containers.list(filters={"label": [f"dockyard.installation={server.installation}",
                                                      f"dockyard.app={app}"]})


@dataclass
class Load:
    """``clients`` threads calling 127.0.0.1:``port`` as fast as they can, counting by step.

    A request the proxy never received is sent again once (tests.support.get_resending) and
    counted in ``retried``; a wrong answer, a 5xx or a second failure counts as ``failed``."""

    port: int
    clients: int = 4
    step: str = "before"
    ok: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5) as client:
            while not self.stop.is_set():
                step = self.step
                try:
                    r, resent = get_resending(client)
                    if resent:
                        self.retried[step] += 1
                        self.errors.append(f"{step}: retried after {resent}")
                    good = r.status_code == 200 and r.text == "steady\n"
                    if not good:
                        self.errors.append(f"{step}: HTTP {r.status_code} {r.text[:80]!r}")
                except httpx.HTTPError as exc:
                    good = False
                    self.errors.append(f"{step}: {exc!r}")
                (self.ok if good else self.failed)[step] += 1
                time.sleep(0.005)  # bounded: about 200 requests a second per client at most

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


def test_an_http_port_is_served_by_the_proxy_through_a_redeploy_and_clashes_are_refused(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    port = free_port()
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "first", stack(f'["{port}:8000"]'))
    push = server.push(repo, app_name)
    assert push.returncode == 0 and f"http://{app_name}.localhost:{port}/" in push.stderr, push.stderr
    assert "not honoured" not in push.stderr
    assert answer(port) == "steady\n"
    assert server.body(f"{app_name}.localhost") == "steady\n"  # routed by host name too
    (first,) = containers(engine, server, app_name)
    assert not first.attrs["HostConfig"]["PortBindings"]  # the proxy serves it: Docker publishes nothing

    status = server.api("GET", f"/api/v1/apps/{app_name}/environments/production").json()
    assert status["ports"] == [{"service": "web", "host_port": port, "container_port": 8000, "protocol": "http",
                                "via": "proxy", "host_ip": "", "url": f"http://{app_name}.localhost:{port}/"}]
    assert f"http://{app_name}.localhost:{port}/" in server.cli("status", app_name).stdout

    # a redeploy that changes the service: a new container, and the port never stops answering
    make_repo(repo, stack(f'["{port}:8000"]', marker="2"))
    with Load(port) as load:
        time.sleep(1.0)
        load.step = "redeploy"
        redeploy = server.push(repo, app_name)
        load.step = "after"
        time.sleep(1.0)
    assert redeploy.returncode == 0 and "Release" in redeploy.stderr and "is live" in redeploy.stderr, redeploy.stderr
    (second,) = containers(engine, server, app_name)
    assert second.id != first.id
    print(f"\nload on the published port {port}, 4 clients: ok {dict(load.ok)}, failed {dict(load.failed)}, "
          f"retried once (closed or reset by a proxy reload, before any answer) {dict(load.retried)}")
    assert sum(load.failed.values()) == 0, (dict(load.failed), load.errors[:5])
    assert all(load.ok[s] > 0 for s in ("before", "redeploy", "after")), dict(load.ok)

    # another app asks for the same host port: refused at push, the first keeps serving
    other = f"{app_name}-b"
    server.cli("apps", "create", other)
    refused = server.push(make_repo(tmp_path / "other", stack(f'["{port}:8000"]', text="intruder")), other)
    assert (f"the host port {port} is already published by app {app_name}'s environment production (service web)"
            in refused.stderr), refused.stderr
    assert f"dockyard.yml (environments/production/services/web/ports: {{{port}: <free port>}})" in refused.stderr
    assert "Nothing was released; the previous release keeps serving." in refused.stderr
    assert answer(port) == "steady\n"
    assert server.api("GET", f"/api/v1/apps/{other}").json()["live_release"] is None

    # a host port another program holds: refused, and nothing of the other app starts
    held = free_port()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("0.0.0.0", held))
        holder.listen()
        taken = server.push(make_repo(tmp_path / "other", stack(f'["{held}:8000"]', text="intruder")), other)
    assert f"the host port {held} is taken on this host by another program" in taken.stderr, taken.stderr
    assert containers(engine, server, other) == []

    # removing the app takes its port off the proxy
    server.cli("apps", "delete", app_name, "--yes")
    wait_until(lambda: answer(port) == "<ConnectError>", 15, f"port {port} to close")
    server.cli("apps", "delete", other, "--yes")


def test_a_udp_port_is_published_by_docker_and_its_service_released_stop_first(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    udp = free_port()
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", stack(f'["8000", "{udp}:9000/udp"]'))
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    assert (f"web: Docker publishes its host port {udp}/udp (not the proxy): one container binds it at a time, so "
            "web is released stop-first") in push.stderr, push.stderr
    assert server.body(f"{app_name}.localhost") == "steady\n"
    (first,) = containers(engine, server, app_name)
    assert first.attrs["HostConfig"]["PortBindings"] == {"9000/udp": [{"HostIp": "", "HostPort": str(udp)}]}

    make_repo(repo, stack(f'["8000", "{udp}:9000/udp"]', marker="2"))
    again = server.push(repo, app_name)
    assert again.returncode == 0, again.stderr
    assert f"first: Docker binds its host ports ({udp}/udp), which one container holds at a time" in again.stderr
    (second,) = containers(engine, server, app_name)
    assert second.id != first.id and second.attrs["HostConfig"]["PortBindings"] == first.attrs["HostConfig"][
        "PortBindings"]
    assert server.body(f"{app_name}.localhost") == "steady\n"
    status = server.api("GET", f"/api/v1/apps/{app_name}/environments/production").json()
    assert [(p["host_port"], p["protocol"], p["via"], p["url"]) for p in status["ports"]] == [
        (udp, "udp", "docker", f"udp://{app_name}.localhost:{udp}")]
    server.cli("apps", "delete", app_name, "--yes")
