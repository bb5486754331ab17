"""Replicas: several containers per service, kept, started, routed and stopped with zero downtime.
The planner (pure, with properties over random observed states), the compose and dockyard.yml
keys, and the Deployer on the fakes."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.domain import stack
from dockyard.domain.errors import InvalidSource
from dockyard.domain.model import DEFAULT_ENVIRONMENT, Release, RunningService, ServiceSpec
from dockyard.planning.changes import SCALE, changes
from dockyard.planning.deploy import (
    AwaitReady,
    Drain,
    HaltTasks,
    KeepService,
    RemoveRoute,
    RoutePort,
    RouteTraffic,
    StartService,
    StopTasks,
    plan_release,
)
from tests.support import static_site
from tests.unit.test_deployer import ROUTE_ID, World
from tests.unit.test_deployer import world as world  # the fixture, re-exported
from tests.unit.test_environments import World as EnvWorld

IMG1 = "reg:5000/shop/shop@sha256:" + "1" * 64
IMG2 = "reg:5000/shop/shop@sha256:" + "2" * 64
WEB = ServiceSpec(name="web", image=IMG1, port=3000, hosts=("shop.localhost",))
DB = ServiceSpec(name="db", image="postgres:16", volumes=("data:/var/lib/postgresql/data",))


def release(*services: ServiceSpec) -> Release:
    return Release(id=9, app="shop", commit="c" * 40, services=services)


def container(service: ServiceSpec, replica: int, *, spec_hash: str | None = None, state: str = "running",
              cid: str = "") -> RunningService:
    return RunningService(
        id=cid or f"{service.name}-{replica}-{spec_hash or 'same'}-{state}", app="shop", service=service.name,
        release=1, image=service.image, state=state, upstream=f"10.0.0.{replica + 2}:{service.port}",
        spec_hash=service.spec_hash if spec_hash is None else spec_hash, replica=replica,
    )


def scaled(service: ServiceSpec, n: int) -> ServiceSpec:
    return dataclasses.replace(service, replicas=n)


def routed_at_switch(actions: list, service: str) -> list[tuple[str, int]]:
    """What the applier routes at ``RouteTraffic(service)``: (kept container id | 'new', replica)."""
    out: list[tuple[str, int]] = []
    for a in actions:
        if isinstance(a, KeepService) and a.service.name == service:
            out += [(t.id, t.replica) for t in a.tasks]
        elif isinstance(a, StartService) and a.service.name == service:
            out += [("new", r) for r in a.replicas]
        elif isinstance(a, RouteTraffic) and a.service.name == service:
            return out
    raise AssertionError(f"{service} is never routed")


# -- spec_hash and the planner ---------------------------------------------------------------------
def test_the_replica_count_is_never_in_the_spec_hash() -> None:
    assert {scaled(WEB, n).spec_hash for n in (0, 1, 2, 3, 100)} == {WEB.spec_hash}
    assert dataclasses.replace(WEB, container_name="web1").spec_hash == WEB.spec_hash


def test_a_first_release_starts_every_replica_awaits_them_all_then_routes() -> None:
    actions = plan_release(release(scaled(WEB, 3)), [])
    starts = [(type(a).__name__, getattr(a, "replicas", None)) for a in actions[1:]]
    assert starts == [("StartService", (0, 1, 2)), ("AwaitReady", (0, 1, 2)), ("RouteTraffic", None),
                      ("Monitor", None)]


def test_scaling_up_keeps_the_running_replicas_and_starts_the_missing_ones() -> None:
    old = [container(WEB, 0), container(WEB, 1)]
    actions = plan_release(release(scaled(WEB, 3)), old)
    assert [a for a in actions if isinstance(a, KeepService)] == [KeepService(scaled(WEB, 3), tuple(old))]
    assert [a.replicas for a in actions if isinstance(a, StartService)] == [(2,)]
    assert not [a for a in actions if isinstance(a, StopTasks)]
    assert routed_at_switch(actions, "web") == [(old[0].id, 0), (old[1].id, 1), ("new", 2)]


def test_scaling_down_stops_the_extra_replicas_after_the_route_switch() -> None:
    old = [container(WEB, i) for i in range(3)]
    actions = plan_release(release(scaled(WEB, 1)), old)
    assert not [a for a in actions if isinstance(a, StartService)]
    assert routed_at_switch(actions, "web") == [(old[0].id, 0)]
    stops = [i for i, a in enumerate(actions) if isinstance(a, StopTasks)]
    assert [actions[i] for i in stops] == [StopTasks("web", tuple(old[1:]))]
    assert min(stops) > max(i for i, a in enumerate(actions) if isinstance(a, RouteTraffic))


def test_a_new_image_replaces_every_replica_start_first() -> None:
    old = [container(WEB, i, spec_hash="old") for i in range(3)]
    new = scaled(dataclasses.replace(WEB, image=IMG2), 3)
    actions = plan_release(release(new), old)
    kinds = [type(a).__name__ for a in actions]
    assert kinds == ["EnsureNetwork", "StartService", "AwaitReady", "RouteTraffic", "Monitor", "Drain", "StopTasks"]
    assert [a.replicas for a in actions if isinstance(a, StartService)] == [(0, 1, 2)]
    assert [a.replicas for a in actions if isinstance(a, AwaitReady)] == [(0, 1, 2)]
    assert [a for a in actions if isinstance(a, Drain | StopTasks)] == [Drain(tuple(old)), StopTasks("web", tuple(old))]


def test_new_replicas_take_the_free_indexes() -> None:
    old = [container(WEB, 1), container(WEB, 4)]
    actions = plan_release(release(scaled(WEB, 4)), old)
    assert [a.replicas for a in actions if isinstance(a, StartService)] == [(0, 2)]


def test_zero_replicas_run_nothing_and_take_the_route_away_before_stopping() -> None:
    old = [container(WEB, 0), container(WEB, 1)]
    actions = plan_release(release(scaled(WEB, 0)), old)
    assert [type(a).__name__ for a in actions] == ["EnsureNetwork", "RemoveRoute", "Drain", "StopTasks"]
    assert actions[1] == RemoveRoute("web", DEFAULT_ENVIRONMENT)
    assert actions[3] == StopTasks("web", tuple(old))
    assert not plan_release(release(scaled(WEB, 0)), [])[1:]


def test_published_proxy_ports_switch_with_the_route_for_every_replica() -> None:
    web = dataclasses.replace(scaled(WEB, 2), published=((8081, 3000, "http", ""),))
    actions = plan_release(release(web), [])
    assert RoutePort(web, 8081, 3000, "") in actions


def test_a_kept_one_shot_still_running_is_awaited_by_its_replica() -> None:
    once = ServiceSpec(name="migrate", image=IMG1, one_shot=True)
    c = container(once, 0)
    assert AwaitReady(once, (0,)) in plan_release(release(once), [c])


# -- properties over random observed states ----------------------------------------------------------
WORKER = ServiceSpec(name="worker", image=IMG1, command=("work",), depends_on=("db",), after_healthy=("db",))


@st.composite
def observed_states(draw: st.DrawFn) -> tuple[list[ServiceSpec], list[RunningService]]:
    """A release of some of web (stateless, routed), db (stateful) and worker (waits for db to be
    healthy), each with a random count, and random containers of theirs: matching or older specs,
    running or exited, any replica index (duplicates too)."""
    services, found = [], []
    for base in draw(st.sets(st.sampled_from([DB, WORKER, WEB]), min_size=1)):
        spec = scaled(base, draw(st.integers(0, 1)) if base.stateful else draw(st.integers(0, 6)))
        services.append(spec)
        for i in range(draw(st.integers(0, 5))):
            found.append(container(
                spec, draw(st.integers(0, 6)), spec_hash=draw(st.sampled_from([None, "old"])),
                state=draw(st.sampled_from(["running", "running", "exited"])), cid=f"{spec.name}{i}"))
    order = {"db": 0, "worker": 1, "web": 2}  # start order: dependencies first
    return sorted(services, key=lambda s: order[s.name]), found


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(observed_states())
def test_every_plan_keeps_enough_ready_upstreams_and_stops_only_after_the_switch(
        state: tuple[list[ServiceSpec], list[RunningService]]) -> None:
    services, found = state
    actions = plan_release(release(*services), found)
    switch = [i for i, a in enumerate(actions) if isinstance(a, RouteTraffic | RoutePort | RemoveRoute)]
    last_wait = max((i for i, a in enumerate(actions) if isinstance(a, AwaitReady)), default=-1)
    assert all(i > last_wait for i in switch)  # every started replica answers before any switch
    stops = [i for i, a in enumerate(actions) if isinstance(a, StopTasks)]
    assert all(i > max(switch, default=-1) for i in stops)  # nothing stops before the route moved
    stopped = [t.id for i in stops for t in actions[i].tasks]
    assert len(stopped) == len(set(stopped))  # each stopped once
    assert all(t.service == actions[i].service for i in stops for t in actions[i].tasks)  # by its own service
    assert len({actions[i].service for i in stops}) == len(stops)  # one action per service
    all_kept = {t.id for a in actions if isinstance(a, KeepService) for t in a.tasks}
    assert not set(stopped) & all_kept  # a kept container never stops
    assert set(stopped) | all_kept == {c.id for c in found}
    for spec in services:
        n = spec.replicas
        running_old = [c for c in found if c.service == spec.name and c.state == "running"]
        keeps = [a for a in actions if isinstance(a, KeepService) and a.service.name == spec.name]
        starts = [a for a in actions if isinstance(a, StartService) and a.service.name == spec.name]
        waits = [a for a in actions if isinstance(a, AwaitReady) and a.service.name == spec.name]
        assert len(keeps) <= 1 and len(starts) <= 1 and len(waits) <= 1  # one action per service (no batches here)
        kept = [t for a in keeps for t in a.tasks]
        started = [r for a in starts for r in a.replicas]
        awaited = [r for a in waits for r in a.replicas]
        # exactly N containers serve afterwards, one per replica index
        assert len(kept) + len(started) == n
        assert len({c.replica for c in kept} | set(started)) == n
        assert all(c.state == "running" and c.spec_hash == spec.spec_hash for c in kept)
        assert sorted(started) == sorted(awaited)  # every started replica is awaited
        if spec.is_web and n:
            routed = routed_at_switch(actions, spec.name)
            assert len(routed) == n >= min(len(running_old), n)
        elif spec.is_web:
            assert (RemoveRoute(spec.name, DEFAULT_ENVIRONMENT) in actions) == any(c.service == spec.name for c in found)
        # a stateful service is still halted first: never two containers on its volume
        halts = [i for i, a in enumerate(actions) if isinstance(a, HaltTasks) and a.service == spec.name]
        halted = [t for i in halts for t in actions[i].tasks]
        assert all(t.service == spec.name for t in halted)
        if spec.stateful and started:
            assert len(halts) == (1 if running_old else 0) and len(halted) == len(running_old)
            first_start = min(i for i, a in enumerate(actions) if isinstance(a, StartService))
            assert all(h < first_start for h in halts)
        else:
            assert not halts
    # the worker starts only once db's new container is ready (service_healthy)
    steps = [(type(a).__name__, a.service.name) for a in actions if isinstance(a, StartService | AwaitReady)]
    if ("StartService", "worker") in steps and ("AwaitReady", "db") in steps:
        assert steps.index(("AwaitReady", "db")) < steps.index(("StartService", "worker"))


# -- compose and dockyard.yml ---------------------------------------------------------------------------
def load(text: str) -> dict[str, ServiceSpec]:
    found = stack.compose_stack("shop", textwrap.dedent(text), {}, {}, lambda path: None, "localhost", (),
                                source="docker-compose.yml")
    return {s.name: s for s in found.services}


def refused(text: str) -> InvalidSource:
    with pytest.raises(InvalidSource) as info:
        load(text)
    return info.value


def test_compose_replicas_and_scale_give_the_count() -> None:
    assert load("services:\n  web:\n    image: nginx\n    deploy: {replicas: 3}\n")["web"].replicas == 3
    assert load("services:\n  web:\n    image: nginx\n    scale: 2\n")["web"].replicas == 2
    assert load("services:\n  web:\n    image: nginx\n    scale: 0\n")["web"].replicas == 0
    assert load("services:\n  web:\n    image: nginx\n")["web"].replicas == 1
    same = load("services:\n  web:\n    image: nginx\n    scale: 2\n    deploy: {replicas: 2}\n")
    assert same["web"].replicas == 2


@pytest.mark.parametrize("body,words", [
    ("    deploy: {replicas: 101}\n", "line 4: services/web/deploy/replicas: '101' should be a whole number from 0 "
                                    "to 100"),
    ("    deploy: {replicas: -1}\n", "services/web/deploy/replicas: '-1' should be a whole number"),
    ("    scale: two\n", "line 4: services/web/scale: 'two' should be a whole number"),
    ("    scale: 3\n    deploy: {replicas: 2}\n", "services/web/scale: 3 differs from deploy/replicas (2)"),
    ("    deploy: {replicas: 2}\n    volumes: [data:/data]\nvolumes: {data: {}}\n",
     "line 4: services/web/deploy/replicas: web cannot run 2 containers: it keeps data in a volume"),
    ("    deploy: {replicas: 2}\n    container_name: web1\n",
     "services/web/deploy/replicas: web cannot run 2 containers: its container_name 'web1'"),
    ("    scale: 2\n    ports: ['5353:53/udp']\n",
     "services/web/scale: web cannot run 2 containers: Docker publishes its host port 5353/udp"),
])
def test_compose_replicas_are_refused_with_file_line_and_path(body: str, words: str) -> None:
    error = refused("services:\n  web:\n    image: nginx\n" + body)
    assert error.message.startswith("docker-compose.yml")
    assert words in error.message, error.message


def test_a_one_shot_service_cannot_have_replicas() -> None:
    error = refused("services:\n  migrate:\n    image: nginx\n    deploy: {replicas: 2}\n"
                    "  web:\n    image: nginx\n    depends_on:\n      migrate: {condition: "
                    "service_completed_successfully}\n")
    assert "services/migrate/deploy/replicas: migrate cannot run 2 containers: it runs once" in error.message


def test_replicas_are_no_longer_warned_about() -> None:
    found = stack.compose_stack("shop", "services:\n  web:\n    image: nginx\n    scale: 2\n    deploy: {replicas: 2}\n",
                                {}, {}, lambda path: None, "localhost", (), source="docker-compose.yml")
    assert not [w for w in found.warnings if "replicas" in w or "scale" in w]


def test_dockyard_plan_tells_a_scaled_service_apart() -> None:
    [change] = changes([WEB], [scaled(WEB, 3)])
    assert (change.action, change.reasons) == (SCALE, ("replicas 1 -> 3",))


# -- the Deployer on the fakes ------------------------------------------------------------------------
def compose(replicas: int, tag: str = "1") -> dict[str, str]:
    """A web service of a pulled image (the fake builder gives each commit a new image)."""
    return {**static_site("v1"), "docker-compose.yml": f"services:\n  web:\n    image: nginx:{tag}\n    ports: ['8000']\n"
                                                       f"    deploy: {{replicas: {replicas}}}\n"}


def web_containers(world: World) -> list[RunningService]:
    return sorted((c for c in world.running() if c.state == "running"), key=lambda c: c.replica)


def route_upstreams(world: World) -> tuple[str, ...]:
    [route] = [r for r in world.proxy.routes() if r.id == ROUTE_ID]
    return route.upstreams


def test_one_to_three_to_two_replicas_keeps_what_runs_and_routes_every_upstream(world: World) -> None:
    world.deploy(world.push(compose(1)))
    [first] = web_containers(world)
    world.deploy(world.push(compose(3)))
    three = web_containers(world)
    assert [c.replica for c in three] == [0, 1, 2] and three[0].id == first.id  # kept, two started
    assert route_upstreams(world) == tuple(str(c.upstream) for c in three)
    assert "-----> Starting web #1, #2 (nginx:1)" in world.said  # the two missing replicas, started together
    assert "       waiting for web #1, #2 to answer" in world.said
    world.events.clear()
    world.deploy(world.push(compose(2)))
    two = web_containers(world)
    assert [c.id for c in two] == [c.id for c in three[:2]]
    assert route_upstreams(world) == tuple(str(c.upstream) for c in two)
    assert world.events == [f"route {ROUTE_ID} -> {','.join(str(c.upstream) for c in two)}",
                            f"drain web r{three[2].release} {three[2].id[:12]}",
                            f"stop web r{three[2].release} {three[2].id[:12]}"]


def test_a_new_image_replaces_every_replica_of_a_deploy_start_first(world: World) -> None:
    world.deploy(world.push(compose(3)))
    old = web_containers(world)
    world.events.clear()
    world.deploy(world.push(compose(3, "2")))
    new = web_containers(world)
    assert not {c.id for c in new} & {c.id for c in old} and [c.replica for c in new] == [0, 1, 2]
    kinds = [e.split()[0] for e in world.events]
    assert kinds == ["start"] * 3 + ["ready"] * 3 + ["route"] + ["monitor"] * 3 + ["drain"] * 3 + ["stop"] * 3, world.events
    assert route_upstreams(world) == tuple(str(c.upstream) for c in new)


def test_a_failed_replica_rolls_back_to_every_old_upstream(world: World) -> None:
    world.deploy(world.push(compose(2)))
    old = web_containers(world)
    before = world.proxy.routes()
    world.orchestrator.fail_ready.add("web")
    with pytest.raises(Exception, match="exited"):
        world.deploy(world.push(compose(3, "2")))
    assert web_containers(world) == old
    assert world.proxy.routes() == before


def test_restore_routes_puts_every_replica_back(world: World) -> None:
    world.deploy(world.push(compose(3)))
    world.proxy.remove_route(ROUTE_ID)
    world.deployer.releaser.restore_routes()
    assert route_upstreams(world) == tuple(str(c.upstream) for c in web_containers(world))


def test_a_service_whose_image_has_a_volume_cannot_run_replicas(world: World) -> None:
    world.orchestrator.image_volumes["redis:7"] = ("/data",)
    files = {**static_site("v1"), "docker-compose.yml": "services:\n  cache:\n    image: redis:7\n    scale: 2\n"}
    with pytest.raises(InvalidSource, match="cache cannot run 2 containers: it keeps data in a volume"):
        world.deploy(world.push(files))
    assert not world.running()


@pytest.fixture
def envs(tmp_path: Path) -> EnvWorld:
    return EnvWorld(tmp_path)


def test_dockyard_yml_sets_the_count_per_environment(envs: EnvWorld) -> None:
    envs.envs.create("shop", "recette")
    files = {**compose(2), "dockyard.yml": "environments:\n  production:\n    services:\n      web: {replicas: 4}\n"
                                           "  recette:\n    services:\n      web: {replicas: 1}\n"}
    envs.deploy("production", files)
    envs.deploy("recette", files)
    counts = {e: len([c for c in envs.orchestrator.observe("shop") if c.environment == e])
              for e in ("production", "recette")}
    assert counts == {"production": 4, "recette": 1}
    routes = {r.id: r for r in envs.proxy.routes()}
    assert len(routes["dy-unit-shop.web"].upstreams) == 4
    assert not any("replicas" in line for line in envs.said)  # no 'not honoured yet' any more


@pytest.mark.parametrize("decl,words", [
    ("web: {replicas: 3}\n      nope: {replicas: 2}", "services/nope/replicas: the stack has no service 'nope'"),
    ("db: {replicas: 2}", "dockyard.yml: environments/production/services/db/replicas: db cannot run 2 containers: "
                          "it keeps data in a volume"),
])
def test_dockyard_yml_replicas_that_cannot_run_are_refused_and_change_nothing(envs: EnvWorld, decl: str,
                                                                              words: str) -> None:
    files = {**static_site("v1"), "docker-compose.yml": "services:\n  web:\n    build: .\n    ports: ['8000']\n"
                                                        "  db:\n    image: postgres\n    volumes: [data:/d]\n"
                                                        "volumes: {data: {}}\n"}
    envs.deploy("production", files)
    before = (list(envs.orchestrator.observe("shop")), envs.proxy.routes())
    with pytest.raises(InvalidSource) as info:
        envs.deploy("production", {**files, "dockyard.yml": f"environments:\n  production:\n    services:\n"
                                                            f"      {decl}\n"})
    assert words in info.value.message, info.value.message
    assert (list(envs.orchestrator.observe("shop")), envs.proxy.routes()) == before

