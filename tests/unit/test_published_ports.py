"""Published host ports: compose ``ports`` read (pure), the conflict rules, the planner's actions,
and releases on the fakes: the proxy serves HTTP host ports start-first, Docker publishes the
others stop-first, and a clash is refused before anything changes."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from dockyard.adapters.sql_store import SqlStore
from dockyard.domain import published_ports as pp
from dockyard.domain import stack
from dockyard.domain.errors import Conflict, DeployFailed, InvalidSource, Unavailable
from dockyard.domain.images import parse_dockerfile
from dockyard.domain.model import App, Release, RunningService, ServiceSpec
from dockyard.domain.published_ports import PortRoute
from dockyard.domain.records import service_from_dict
from dockyard.fakes import FakeBuilder, FakeOrchestrator, FakeProxy, FakeRegistry, FakeRepos
from dockyard.planning.deploy import (
    AwaitReady,
    HaltTasks,
    RemovePort,
    RemoveRoute,
    RoutePort,
    RouteTraffic,
    StartService,
    StopTasks,
    plan_release,
    plan_removal,
)
from dockyard.services.deploy import Deployer
from dockyard.services.environments import Environments
from dockyard.services.inspect import parse_source

IMG = "reg:5000/shop/web@sha256:" + "1" * 64
IMAGES = {"Dockerfile": parse_dockerfile("Dockerfile", "FROM node\nEXPOSE 3000\n", "shop")}
PINNED = {"Dockerfile": IMG}


def services(ports: str, extra: str = "") -> tuple[ServiceSpec, ...]:
    text = f"services:\n  web:\n    build: .\n    ports: {ports}\n{extra}"
    return stack.compose_services("shop", text, IMAGES, PINNED, lambda _: None, "localhost", ())


def web(ports: str, extra: str = "") -> ServiceSpec:
    (found,) = services(ports, extra)
    return found


def refusal(ports: str, extra: str = "") -> str:
    with pytest.raises(InvalidSource) as info:
        services(ports, extra)
    return info.value.message


# -- reading ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ports,routed,published",
    [
        ('["8894"]', 8894, ()),
        ('["50011:8894"]', 8894, ((50011, 8894, "http", ""),)),
        ('["50011:8894/tcp"]', 8894, ((50011, 8894, "http", ""),)),
        ('["0.0.0.0:50011:8894"]', 8894, ((50011, 8894, "http", ""),)),
        ('["127.0.0.1:50011:8894"]', 8894, ((50011, 8894, "http", "127.0.0.1"),)),
        ('["[::1]:50011:8894"]', 8894, ((50011, 8894, "http", "::1"),)),
        ('["10.0.0.7:50011:8894"]', 8894, ((50011, 8894, "http", ""),)),  # warned: every interface
        ("[{target: 8894, published: 50011}]", 8894, ((50011, 8894, "http", ""),)),
        ("[{target: 8894, published: '50011', host_ip: 127.0.0.1}]", 8894, ((50011, 8894, "http", "127.0.0.1"),)),
        ('["5353:53/udp"]', None, ((5353, 53, "udp", ""),)),
        ('["5353:53/udp", "8080:3000"]', 3000, ((5353, 53, "udp", ""), (8080, 3000, "http", ""))),
        ('["53:53/tcp", "53:53/udp"]', 53, ((53, 53, "http", ""), (53, 53, "udp", ""))),
        ("[{target: 25, published: 2525, mode: host}]", None, ((2525, 25, "tcp", ""),)),
        ("[{target: 25, published: 2525, protocol: sctp}]", None, ((2525, 25, "sctp", ""),)),
        ('["50011-50013:8894-8896"]', 8894, tuple((50011 + i, 8894 + i, "http", "") for i in range(3))),
        ('["127.0.0.1::8894"]', 8894, ()),  # a random host port: not published (warned)
        ('["8000-9000"]', 8000, ()),  # container ports only: the first is routed
        ('["1-65535"]', 1, ()),  # never expanded
        ('["3000", "50011:8894"]', 3000, ((50011, 8894, "http", ""),)),
    ],
)
def test_ports_are_read_into_the_routed_port_and_the_published_ones(
    ports: str, routed: int | None, published: tuple[pp.Published, ...]
) -> None:
    found = web(ports)
    assert (found.port, found.published) == (routed, published)


def test_a_service_marked_direct_publishes_its_tcp_ports_with_docker_and_is_not_routed() -> None:
    found = web('["5432:5432", "9187"]', "    x-dockyard-publish: direct\n")
    assert found.published == ((5432, 5432, "tcp", ""),)
    assert found.port == 9187  # a port without a host side is routed by host name, as before
    assert found.direct_ports == found.published and found.proxied_ports == ()


@pytest.mark.parametrize(
    "ports,extra,message",
    [
        ('["50000-50030:8000-8030"]', "", "the range 50000-50030 holds 31 host ports; dockyard publishes at most 20"),
        ('["50000-50002:8000-8001"]', "", "the host range has 3 ports, the container range 2"),
        ('["50000-50002:8000-9000"]', "", "the host range has 3 ports, the container range 1001"),
        ('["50000-50002:8000"]', "", "a range of host ports for one container port lets Docker pick one"),
        ('["5353:53/quic"]', "", "the protocol 'quic' is not tcp, udp or sctp"),
        ('["nowhere:50011:8894"]', "", "'nowhere' is not an IP address"),
        ('["70000:80"]', "", "port '70000:80' is not understood"),
        ("[{published: 80}]", "", "needs 'target', the container port"),
        ("[{target: 80, published: 8080, mode: swarm}]", "", "mode 'swarm' is not 'host' or 'ingress'"),
        ('["50011:8894"]', "    x-dockyard-publish: yes-please\n", "x-dockyard-publish: 'yes-please' is not 'proxy' or 'direct'"),
    ],
)
def test_bad_ports_are_refused_naming_file_line_and_key(ports: str, extra: str, message: str) -> None:
    refused = refusal(ports, extra)
    assert refused.startswith("compose file line 4: services/web/") or "x-dockyard-publish" in refused, refused
    assert message in refused, refused


def test_a_host_port_published_twice_in_one_file_is_refused_naming_both() -> None:
    text = textwrap.dedent("""\
        services:
          web:
            build: .
            ports: ["50011:3000"]
          admin:
            build: .
            ports: ["8080:3000", "50011:3001"]
        """)
    with pytest.raises(InvalidSource) as info:
        stack.compose_services("shop", text, IMAGES, PINNED, lambda _: None, "localhost", ())
    assert info.value.message == ("compose file line 7: services/admin/ports/1: the host port 50011 is already "
                                  "published by services/web/ports/0 (line 4)")
    same = refusal('["50011:3000", "50011:3001"]')
    assert "services/web/ports/1: the host port 50011 is already published by services/web/ports/0" in same
    assert web('["53:53", "53:53/udp"]').published  # one port, two transports: fine


def test_a_one_shot_service_publishes_nothing() -> None:
    text = textwrap.dedent("""\
        services:
          migrate:
            build: .
            ports: ["50011:3000", "5353:53/udp"]
          web:
            build: .
            depends_on: {migrate: {condition: service_completed_successfully}}
        """)
    found = {s.name: s for s in stack.compose_services("shop", text, IMAGES, PINNED, lambda _: None, "localhost", ())}
    assert (found["migrate"].port, found["migrate"].published) == (None, ())


def test_spec_hash_counts_only_the_ports_docker_publishes() -> None:
    plain = ServiceSpec(name="web", image=IMG, port=3000)
    assert plain.spec_hash == ServiceSpec(name="web", image=IMG, port=3000, published=()).spec_hash
    served = replace(plain, published=((50011, 3000, "http", ""),))
    assert served.spec_hash == plain.spec_hash  # the proxy moves; the container stays
    assert replace(plain, published=((50012, 3000, "http", ""),)).spec_hash == plain.spec_hash
    direct = replace(plain, published=((5353, 53, "udp", ""),))
    assert direct.spec_hash != plain.spec_hash
    assert replace(plain, published=((5354, 53, "udp", ""),)).spec_hash != direct.spec_hash


def test_published_ports_survive_the_store_and_the_parser_child_as_tuples() -> None:
    spec = web('["50011:3000", "5353:53/udp"]')
    back = service_from_dict(json.loads(json.dumps(dataclasses.asdict(spec))))
    assert back == spec and back.spec_hash == spec.spec_hash


def test_urls_and_listing() -> None:
    assert pp.url((50011, 8894, "http", ""), "shop.localhost") == "http://shop.localhost:50011/"
    assert pp.url((50011, 8894, "http", "127.0.0.1"), "shop.localhost") == "http://127.0.0.1:50011/"
    assert pp.url((5353, 53, "udp", "::1"), "shop.localhost") == "udp://[::1]:5353"
    listed = pp.listing([{"name": "dns", "hosts": [], "published": [[5353, 53, "udp", ""]]}], "localhost")
    assert listed == [{"service": "dns", "host_port": 5353, "container_port": 53, "protocol": "udp", "via": "docker",
                       "host_ip": "", "url": "udp://localhost:5353"}]


# -- remapping ------------------------------------------------------------------------------------
def test_remap_changes_host_ports_and_refuses_what_makes_no_sense() -> None:
    a = ServiceSpec(name="api1", image=IMG, port=8894, published=((50011, 8894, "http", ""),))
    b = ServiceSpec(name="api2", image=IMG, port=8894, published=((50012, 8894, "http", ""), (53, 53, "udp", "")))
    moved = pp.remap([a, b], {50011: 51011, 53: 5353})
    assert [s.published for s in moved] == [((51011, 8894, "http", ""),),
                                            ((50012, 8894, "http", ""), (5353, 53, "udp", ""))]
    assert pp.remap([a, b], {}) == (a, b)
    with pytest.raises(InvalidSource, match="the host port 50099 is published by no service"):
        pp.remap([a, b], {50099: 51099})
    with pytest.raises(InvalidSource, match="'70000' is not a host port"):
        pp.remap([a, b], {50011: 70000})
    with pytest.raises(InvalidSource, match=r"the host port 50012 is published twice \(services api1 and api2\)"):
        pp.remap([a, b], {50011: 50012})


# -- conflicts --------------------------------------------------------------------------------------
WEB = ServiceSpec(name="web", image=IMG, port=8000, hosts=("shop.localhost",), published=((50011, 8000, "http", ""),))
DNS = ServiceSpec(name="dns", image=IMG, published=((5353, 53, "udp", ""),))


def conflicts(wanted: list[ServiceSpec], live: list[ServiceSpec] | None = None, served: tuple[int, ...] = (),
              reserved: dict[int, str] | None = None, others: dict[tuple[int, str], str] | None = None) -> list:
    return pp.refuse_conflicts("production", wanted, live or [], served, reserved or {}, others or {})


def test_ports_nobody_holds_are_left_to_probe_on_the_host() -> None:
    assert conflicts([WEB, DNS]) == [(WEB, (50011, 8000, "http", "")), (DNS, (5353, 53, "udp", ""))]


def test_ports_the_environment_holds_already_are_its_own() -> None:
    moved = replace(WEB, name="admin")  # the proxy's port may move to another service: it only changes upstream
    assert conflicts([moved, DNS], live=[WEB, DNS]) == []
    assert conflicts([WEB], served=(50011,)) == []  # a port the proxy serves for it, whatever the store says


def test_dockyard_own_ports_and_other_apps_ports_are_refused_with_what_to_do() -> None:
    with pytest.raises(Conflict) as info:
        conflicts([replace(WEB, published=((7700, 8000, "http", ""),))], reserved={7700: "its API"})
    assert info.value.message.startswith("the host port 7700 is dockyard's own (its API): service web cannot publish it")
    assert "dockyard.yml (environments/production/services/web/ports: {7700: <free port>})" in info.value.message
    assert conflicts([replace(DNS, published=((7700, 53, "udp", ""),))], reserved={7700: "its API"})  # TCP only
    with pytest.raises(Conflict, match=r"the host port 50011 is already published by app blog's environment "
                                       r"production \(service web\): service web cannot publish it too"):
        conflicts([WEB], others=pp.holders("blog", "production", [WEB]))
    with pytest.raises(Conflict, match=r"the host port 5353/udp is already published by app blog"):
        conflicts([DNS], others=pp.holders("blog", "production", [DNS]))
    assert conflicts([replace(DNS, published=((50011, 53, "udp", ""),))], others=pp.holders("blog", "x", [WEB]))


def test_a_port_used_twice_or_moving_between_the_proxy_and_docker_is_refused() -> None:
    with pytest.raises(Conflict, match="the host port 50011 is published twice, by services web and admin"):
        conflicts([WEB, replace(WEB, name="admin")])
    to_docker = replace(WEB, published=((50011, 8000, "tcp", ""),))
    with pytest.raises(Conflict, match="would move from the proxy to Docker within one release"):
        conflicts([to_docker], live=[WEB])
    with pytest.raises(Conflict, match="would move from Docker to the proxy"):
        conflicts([WEB], live=[to_docker])
    with pytest.raises(Conflict, match="published by Docker for service dns of the live release: service resolver"):
        conflicts([replace(DNS, name="resolver")], live=[DNS])


# -- planning ---------------------------------------------------------------------------------------
def running(service: ServiceSpec, cid: str, spec_hash: str = "old") -> RunningService:
    return RunningService(id=cid, app="shop", service=service.name, release=1, image=IMG, state="running",
                          upstream=f"10.0.0.{len(cid)}:8000" if service.is_web else None, spec_hash=spec_hash)


def release(*specs: ServiceSpec) -> Release:
    return Release(id=2, app="shop", commit="c" * 40, services=specs)


def test_a_proxied_port_switches_with_the_host_routes_after_every_new_container_answers() -> None:
    actions = plan_release(release(WEB), [running(WEB, "old")], served=(50011, 50099))
    kinds = [type(a) for a in actions]
    assert RoutePort(WEB, 50011, 8000, "") in actions
    assert kinds.index(AwaitReady) < kinds.index(RouteTraffic) < kinds.index(RoutePort) < kinds.index(StopTasks)
    assert RemovePort(50099) in actions  # served, no longer published: after the switch
    assert RemovePort(50011) not in actions
    assert not [a for a in actions if isinstance(a, HaltTasks)]  # start-first


def test_a_kept_service_has_its_port_refreshed() -> None:
    actions = plan_release(release(WEB), [running(WEB, "same", spec_hash=WEB.spec_hash)])
    assert [type(a).__name__ for a in actions] == ["EnsureNetwork", "KeepService", "RouteTraffic", "RoutePort"]


def test_a_service_docker_publishes_ports_for_is_stop_first() -> None:
    old = running(DNS, "old-dns")
    actions = plan_release(release(DNS), [old])
    assert actions.index(HaltTasks("dns", (old,), ("5353/udp",))) < actions.index(StartService(DNS, (0,)))
    assert not [a for a in actions if isinstance(a, RoutePort | RouteTraffic)]


def test_removal_takes_the_environment_ports_off_first() -> None:
    actions = plan_removal("shop", [running(WEB, "old")], "production", served=(50011,))
    assert actions[0] == RemovePort(50011)
    assert isinstance(actions[1], RemoveRoute) and isinstance(actions[-1], StopTasks)


# -- releases on the fakes ------------------------------------------------------------------------
@dataclasses.dataclass
class World:
    store: SqlStore
    orchestrator: FakeOrchestrator
    proxy: FakeProxy
    deployer: Deployer
    envs: Environments
    events: list[str]
    said: list[str] = dataclasses.field(default_factory=list)

    def release(self, *specs: ServiceSpec, app: str = "shop", env: str = "production") -> int:
        return self.deployer.release(self.store.get_app(app), "a" * 40, specs, None, self.said.append,
                                     environment=env)

    def ports(self) -> dict[int, tuple[str, str]]:
        return {p.port: (p.upstreams[0], p.owner) for p in self.proxy.ports()}

    def container(self, service: str, app: str = "shop") -> RunningService:
        (found,) = [c for c in self.orchestrator.observe(app) if c.service == service and c.state == "running"]
        return found


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = SqlStore(f"sqlite:///{tmp_path / 'dockyard.db'}")
    store.migrate()
    events: list[str] = []
    repos, registry = FakeRepos(), FakeRegistry()
    orchestrator, proxy = FakeOrchestrator(events), FakeProxy(events)
    deployer = Deployer(store=store, repos=repos, builder=FakeBuilder(registry), registry=registry,
                        orchestrator=orchestrator, proxy=proxy, base_domain="dockyard.test", proxy_port=8080,
                        route_prefix="dy-unit", ready_timeout=5, inspector=parse_source)
    deployer.releaser.reserved = {7700: "its API", 5100: "its registry"}
    envs = Environments(store, repos, orchestrator, deployer, lambda *a: None, "dockyard.test", 8080,
                        "http://dockyard.test:7700", "registry.test:5000")
    for app in ("shop", "blog"):
        store.create_app(App(app))
        repos.create(app)
    return World(store, orchestrator, proxy, deployer, envs, events)


def address(c: RunningService, port: int) -> str:
    assert c.upstream is not None
    return f"{c.upstream.rpartition(':')[0]}:{port}"


def test_the_proxy_serves_a_published_port_and_moves_it_start_first(world: World) -> None:
    api = replace(WEB, published=((50011, 8000, "http", ""), (50012, 9000, "http", "127.0.0.1")))
    world.release(api)
    first = world.container("web")
    assert world.ports() == {50011: (address(first, 8000), "dy-unit-shop.web"),
                             50012: (address(first, 9000), "dy-unit-shop.web")}
    assert "       http://shop.localhost:50011/" in world.said and "       http://127.0.0.1:50012/" in world.said
    assert world.proxy.ports()[1].listen_host == "127.0.0.1"

    world.events.clear()
    changed = replace(api, image=IMG.replace("1" * 64, "2" * 64))
    world.release(changed)
    second = world.container("web")
    assert [e.split()[0] for e in world.events] == ["start", "ready", "route", "port", "port", "monitor", "drain", "stop"], world.events
    assert world.ports()[50011] == (address(second, 8000), "dy-unit-shop.web")

    # the port is dropped from the file: removed once the new release is live
    world.release(replace(changed, published=((50011, 8000, "http", ""),)))
    assert sorted(world.ports()) == [50011]


def test_a_failed_release_puts_the_port_back_on_the_old_container(world: World) -> None:
    world.release(WEB)
    old = world.container("web")
    world.orchestrator.never_ready.add("web")
    with pytest.raises(DeployFailed):
        world.release(replace(WEB, image=IMG.replace("1" * 64, "3" * 64)))
    assert world.ports() == {50011: (address(old, 8000), "dy-unit-shop.web")}

    # the switch itself fails on a second port: the first goes back
    world.orchestrator.never_ready.clear()
    two = replace(WEB, image=IMG.replace("1" * 64, "4" * 64),
                  published=((50011, 8000, "http", ""), (50013, 8001, "http", "")))
    world.proxy.held.add((50013, "tcp"))  # taken after the check: Caddy cannot listen there
    world.deployer.releaser.check_ports = lambda *a: set()  # type: ignore[method-assign]
    with pytest.raises(Unavailable, match="cannot listen on port 50013: address already in use"):
        world.release(two)
    assert world.ports() == {50011: (address(old, 8000), "dy-unit-shop.web")}
    assert world.container("web").id == old.id


def test_clashing_ports_are_refused_before_anything_changes(world: World) -> None:
    world.release(WEB)
    serving = world.ports()
    world.events.clear()
    for specs, message in [
        ((WEB,), "the host port 50011 is already published by app shop's environment production (service web)"),
        ((replace(WEB, published=((7700, 8000, "http", ""),)),), "the host port 7700 is dockyard's own (its API)"),
        ((replace(WEB, published=((8080, 8000, "http", ""),)),), "the host port 8080 is dockyard's own (its proxy)"),
    ]:
        with pytest.raises(Conflict, match=message.replace("(", r"\(").replace(")", r"\)")):
            world.release(*specs, app="blog")
    world.proxy.held.add((50020, "tcp"))
    with pytest.raises(Conflict, match="the host port 50020 is taken on this host by another program"):
        world.release(replace(WEB, published=((50020, 8000, "http", ""),)), app="blog")
    assert world.events == [] and world.store.list_releases("blog") == []
    assert world.ports() == serving
    assert " !     Nothing was released; the previous release keeps serving." in world.said

    # another environment of the same app is another owner, too
    world.envs.create("shop", "recette")
    with pytest.raises(Conflict, match="app shop's environment production"):
        world.release(WEB, env="recette")
    world.release(replace(WEB, hosts=("recette.shop.localhost",), published=((51011, 8000, "http", ""),)),
                  env="recette")
    assert world.ports()[51011][1] == "dy-unit-shop--recette.web"


def test_a_port_docker_publishes_makes_its_service_stop_first(world: World) -> None:
    world.release(DNS)
    old = world.container("dns")
    assert world.orchestrator.bindings[old.id] == ((5353, 53, "udp", ""),)
    assert world.ports() == {}  # not the proxy's
    assert ("       dns: Docker publishes its host port 5353/udp (not the proxy): one container binds it at a time, "
            "so dns is released stop-first") in world.said, world.said

    world.events.clear()
    world.release(replace(DNS, image=IMG.replace("1" * 64, "2" * 64)))
    assert [e.split()[0] for e in world.events] == ["halt", "start", "ready", "monitor", "stop"], world.events
    assert any("first: Docker binds its host ports (5353/udp)" in line for line in world.said)

    # a failed new container: the old one binds its port again
    world.orchestrator.fail_ready.add("dns")
    with pytest.raises(DeployFailed):
        world.release(replace(DNS, image=IMG.replace("1" * 64, "5" * 64)))
    assert world.container("dns").state == "running"


def test_restore_and_removal_take_care_of_the_ports(world: World) -> None:
    world.release(WEB)
    world.envs.create("shop", "recette")
    world.release(replace(WEB, hosts=("recette.shop.localhost",), published=((51011, 8000, "http", ""),)),
                  env="recette")
    before = sorted(world.proxy.ports(), key=lambda p: p.port)
    world.deployer.releaser.proxy = fresh = FakeProxy()  # a proxy that lost its config
    fresh.set_port(PortRoute("dy-unit-port-50099", 50099, ("10.0.0.9:80",), "dy-unit-shop.gone"))  # a leftover
    world.deployer.restore_routes()
    assert sorted(fresh.ports(), key=lambda p: p.port) == before

    status = world.envs.status("shop", "recette")
    assert status["ports"] == [{"service": "web", "host_port": 51011, "container_port": 8000, "protocol": "http",
                                "via": "proxy", "host_ip": "", "url": "http://recette.shop.localhost:51011/"}]
    assert status["urls"] == ["http://recette.shop.localhost:8080/", "http://recette.shop.localhost:51011/"]

    world.deployer.destroy("shop", "recette")
    assert [p.port for p in fresh.ports()] == [50011]
    world.deployer.destroy("shop")
    assert fresh.ports() == []
