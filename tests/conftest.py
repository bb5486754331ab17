"""Fixtures that start real parts: a `dockyard server` (which starts its registry and Caddy)
on a real Docker engine, driven with the real `git` client and the `dockyard` CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support import BASE_IMAGE, Server, remove_images, sweep

# The seed's stack publishes fixed host ports (examples/seed, examples/dockyard.yml): they lie in
# Linux's ephemeral range (32768-60999), where any client connection of the suite may take one
# for a moment. The run keeps them out of that range, and gives the setting back at its end.
SEED_PORTS = "50001-50022,51001-51022"
RESERVED = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


@pytest.fixture(scope="session", autouse=True)
def seed_ports_kept_out_of_the_ephemeral_range() -> Iterator[None]:
    try:
        before = RESERVED.read_text().strip()
        RESERVED.write_text(",".join(p for p in (before, SEED_PORTS) if p) + "\n")
    except OSError:  # not root, or no such setting: the seed's test may meet a taken port
        yield
        return
    try:
        yield
    finally:
        RESERVED.write_text((before or "") + "\n")


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    """The real Docker engine; a missing engine fails the run (scripts/setup.sh starts one)."""
    client = docker.from_env()
    client.ping()
    client.images.get(BASE_IMAGE)  # built by scripts/setup.sh
    yield client
    client.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, engine: docker.DockerClient) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("dockyard-home"), DOCKYARD_MAX_PUSH_BYTES=str(3 * 1024 * 1024),
                 DOCKYARD_BUILD_TIMEOUT="15")
    srv.start()
    try:
        yield srv
    finally:
        for app in srv.api("GET", "/api/v1/apps").json() if srv.proc and srv.proc.poll() is None else []:
            srv.api("DELETE", f"/api/v1/apps/{app['name']}")
        srv.stop()
        sweep(engine, srv.installation)
        remove_images(engine, f"127.0.0.1:{srv.registry_port}/")


_counter = iter(range(10_000))


@pytest.fixture
def app_name(request: pytest.FixtureRequest) -> str:
    """A fresh app name per test."""
    return f"t{next(_counter)}-{request.node.name[5:20].replace('_', '-').strip('-').lower()}".rstrip("-")
