"""Which TCP port makes a service that is not web ready (its compose ``expose``, else a host port
Docker publishes for it); web services are asked over HTTP instead, one-shot ones not at all."""

from __future__ import annotations

import pytest

from dockyard.domain import stack
from dockyard.services.inspect import parse_source

COMPOSE = """\
services:
  web: {build: ., ports: ['8000']}
  api: {build: ., expose: ['9000/udp', '9001-9003/tcp']}
  db: {image: postgres, ports: ['5432:5432'], x-dockyard-publish: direct}
  cache: {image: redis, expose: [6379]}
  worker: {build: ., command: [sleep, '600']}
  migrate: {build: ., command: ['true'], expose: ['7000']}
  app: {build: ., command: [sleep, '1'], depends_on: {migrate: {condition: service_completed_successfully}}}
"""


@pytest.mark.parametrize(("expose", "published", "port"), [
    (["9000"], (), 9000),
    ([9000], (), 9000),
    (["9000/tcp"], (), 9000),
    (["9000/udp", "9001"], (), 9001),
    (["9000-9005"], (), 9000),
    (["x", "0", "70000"], (), 0),
    ([], ((5432, 5432, "tcp", ""),), 5432),
    ([], ((5353, 53, "udp", ""),), 0),
    (["7000"], ((5432, 5432, "tcp", ""),), 7000),
    ([], (), 0),
])
def test_the_ready_port_of_a_service(expose: list[object], published: tuple[tuple[int, int, str, str], ...],
                                      port: int) -> None:
    assert stack.ready_port(expose, published) == port


def test_a_compose_file_s_services_get_their_ready_ports() -> None:
    files = {"Dockerfile": "FROM alpine\nEXPOSE 8000\n", "docker-compose.yml": COMPOSE}
    found = parse_source(list(files), lambda path, limit: files.get(path), "shop", base_domain="localhost",
                         allowed=frozenset())
    ports = {s.name: s.ready_port for s in found.services}
    assert ports == {"web": 0, "api": 9001, "db": 5432, "cache": 6379, "worker": 0, "migrate": 0, "app": 0}
    assert {s.name: s.spec_hash for s in found.services} == {
        s.name: s.__class__(**{**s.__dict__, "ready_port": 0}).spec_hash for s in found.services}
