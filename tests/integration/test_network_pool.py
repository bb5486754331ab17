"""App networks take their subnets from dockyard's pool: a real engine holds hundreds of apps
(its default address pools hold only about 30 bridge networks), and a full pool says how to grow."""

from __future__ import annotations

import ipaddress
import itertools
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from dockyard.adapters.docker_orchestrator import DockerOrchestrator, Pool
from dockyard.domain.errors import Unavailable
from tests.support import sweep

pytestmark = pytest.mark.integration

PREFIX = "dytest-pool"


@pytest.fixture
def installation(engine: docker.DockerClient) -> Iterator[str]:
    """An installation of its own; whatever it left in the engine is removed, and checked gone."""
    name = f"pool{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        sweep(engine, name)
        label = {"label": f"dockyard.installation={name}"}
        assert engine.containers.list(all=True, filters=label) == []
        assert engine.networks.list(filters=label) == []


def subnets_of(engine: docker.DockerClient, installation: str) -> dict[str, ipaddress.IPv4Network]:
    """App → the subnet of its network, for every network the installation has."""
    out = {}
    for summary in engine.api.networks(filters={"label": f"dockyard.installation={installation}"}):
        net = engine.api.inspect_network(summary["Id"])
        (config,) = net["IPAM"]["Config"]
        assert installation in net["Name"], net["Name"]
        out[net["Labels"]["dockyard.app"]] = ipaddress.IPv4Network(config["Subnet"])
    return out


def test_a_pool_holds_hundreds_of_app_networks(engine: docker.DockerClient, installation: str) -> None:
    pool = Pool("10.216.0.0/16", 26)  # a pool of its own: 1,024 networks, none of another test's
    orch = DockerOrchestrator(engine, installation, PREFIX, {}, pool=pool)
    apps = [f"app{i:03d}" for i in range(300)]

    begun = time.monotonic()
    with ThreadPoolExecutor(8) as workers:  # ensure_network serialises itself: no subnet is handed out twice
        list(workers.map(orch.ensure_network, apps, ['production'] * len(apps)))
    created = time.monotonic() - begun

    subnets = subnets_of(engine, installation)
    assert sorted(subnets) == apps  # one network per app, none twice
    whole = ipaddress.IPv4Network(pool.network)
    assert all(s.subnet_of(whole) and s.prefixlen == pool.prefix for s in subnets.values())
    ordered = sorted(subnets.values())
    assert all(a.broadcast_address < b.network_address for a, b in itertools.pairwise(ordered))

    begun = time.monotonic()
    with ThreadPoolExecutor(8) as workers:
        list(workers.map(orch.remove_network, apps, ['production'] * len(apps)))
    removed = time.monotonic() - begun
    assert subnets_of(engine, installation) == {}
    # timings are printed, never asserted (a loaded machine is not a failure): the engine removes
    # one bridge at a time, however many ask at once
    print(f"\n300 app networks: created in {created:.1f}s, removed in {removed:.1f}s")


def test_a_full_pool_refuses_the_next_app_and_says_how_to_grow_it(
    engine: docker.DockerClient, installation: str
) -> None:
    pool = Pool("10.214.0.0/24", 26)  # room for 4 networks
    orch = DockerOrchestrator(engine, installation, PREFIX, {}, pool=pool)
    for app in ("one", "two", "three", "four"):
        orch.ensure_network(app, "production")
    assert sorted(map(str, subnets_of(engine, installation).values())) == [
        "10.214.0.0/26", "10.214.0.128/26", "10.214.0.192/26", "10.214.0.64/26"]

    with pytest.raises(Unavailable) as caught:
        orch.ensure_network("five", "production")
    assert "10.214.0.0/24" in caught.value.message
    assert "DOCKYARD_NETWORK_POOL" in caught.value.hint
    assert sorted(subnets_of(engine, installation)) == ["four", "one", "three", "two"]  # nothing for five
    assert engine.networks.list(names=[orch.network_name("five")]) == []

    orch.remove_network("two", "production")  # a removed app frees its subnet for the next one
    orch.ensure_network("five", "production")
    assert str(subnets_of(engine, installation)["five"]) == "10.214.0.64/26"
