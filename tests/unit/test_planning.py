"""Release planning: a pure function from desired and observed state to safely ordered actions."""

from __future__ import annotations

import dataclasses

import pytest

from dockyard.domain.model import DEFAULT_ENVIRONMENT, Release, RunningService, ServiceSpec
from dockyard.planning.deploy import (
    AwaitReady,
    Drain,
    EnsureNetwork,
    HaltTasks,
    KeepService,
    Monitor,
    RemoveRoute,
    RouteTraffic,
    StartService,
    StopTasks,
    plan_release,
    plan_removal,
)

IMG1 = "reg:5000/shop/shop@sha256:" + "1" * 64
IMG2 = "reg:5000/shop/shop@sha256:" + "2" * 64

WEB = ServiceSpec(name="web", image=IMG1, port=3000, hosts=("shop.localhost",))
API = ServiceSpec(name="api", image=IMG1, port=8000, hosts=("api.shop.localhost",))
WORKER = ServiceSpec(name="worker", image=IMG1, command=("work",))
DB = ServiceSpec(name="db", image="postgres:16")


def release(*services: ServiceSpec, app: str = "shop", environment: str = DEFAULT_ENVIRONMENT) -> Release:
    return Release(id=2, app=app, commit="c" * 40, services=services, environment=environment)


def running(
    service: ServiceSpec | str,
    cid: str | None = None,
    *,
    app: str = "shop",
    state: str = "running",
    environment: str = DEFAULT_ENVIRONMENT,
    spec_hash: str | None = None,
    release_id: int = 1,
) -> RunningService:
    name = service if isinstance(service, str) else service.name
    if spec_hash is None:
        spec_hash = service.spec_hash if isinstance(service, ServiceSpec) else "old"
    return RunningService(
        id=cid or f"{app}-{environment}-{name}-{release_id}",
        app=app,
        service=name,
        release=release_id,
        image=service.image if isinstance(service, ServiceSpec) else IMG2,
        state=state,
        upstream=f"{name}:80",
        environment=environment,
        spec_hash=spec_hash,
    )


def positions(actions: list, kind: type) -> list[int]:
    return [i for i, a in enumerate(actions) if isinstance(a, kind)]


def assert_safe_order(actions: list) -> None:
    """The ordering guarantees every plan must keep."""
    assert isinstance(actions[0], EnsureNetwork)
    assert positions(actions, EnsureNetwork) == [0]
    starts, awaits = positions(actions, StartService), positions(actions, AwaitReady)
    routes, stops = positions(actions, RouteTraffic), positions(actions, StopTasks)
    removes = positions(actions, RemoveRoute)
    if starts and awaits:
        assert max(starts) < min(awaits)
    if awaits and routes:
        assert max(awaits) < min(routes)
    if routes and stops:
        assert max(routes) < min(stops)
    if removes and stops:
        assert max(removes) < min(stops)
    if starts and routes:
        assert max(starts) < min(routes)
    # Every started service is awaited, and only those: the same replicas, in the same order.
    assert [(a.service, a.replicas) for a in actions if isinstance(a, StartService)] == [
        (a.service, a.replicas) for a in actions if isinstance(a, AwaitReady)
    ]
    # Each service's old tasks are stopped by one action, and only its own.
    stopped = [a.service for a in actions if isinstance(a, StopTasks)]
    assert len(stopped) == len(set(stopped))
    assert all(t.service == a.service for a in actions if isinstance(a, StopTasks | HaltTasks) for t in a.tasks)


# -- ServiceSpec.spec_hash --------------------------------------------------------------------


BASE = ServiceSpec(
    name="web",
    image=IMG1,
    port=3000,
    hosts=("shop.localhost",),
    environment=(("A", "1"),),
    command=("serve",),
    depends_on=("db",),
)


@pytest.mark.parametrize(
    "change",
    [
        {"image": IMG2},
        {"port": 3001},
        {"port": None},
        {"environment": (("A", "2"),)},
        {"environment": (("A", "1"), ("B", "2"))},
        {"environment": ()},
        {"command": ("serve", "--debug")},
        {"command": None},
        {"command": ()},
    ],
)
def test_spec_hash_changes(change: dict) -> None:
    assert dataclasses.replace(BASE, **change).spec_hash != BASE.spec_hash


@pytest.mark.parametrize(
    "change",
    [{}, {"name": "other"}, {"hosts": ("a.example.com", "b.example.com")}, {"hosts": ()}, {"depends_on": ()}],
)
def test_spec_hash_stable(change: dict) -> None:
    assert dataclasses.replace(BASE, **change).spec_hash == BASE.spec_hash


def test_spec_hash_is_deterministic_and_short() -> None:
    copy = ServiceSpec(**dataclasses.asdict(BASE))
    assert copy is not BASE
    assert copy.spec_hash == BASE.spec_hash
    assert len(BASE.spec_hash) == 16
    assert set(BASE.spec_hash) <= set("0123456789abcdef")


@pytest.mark.parametrize("port,web", [(None, False), (80, True), (0, True)])
def test_is_web(port: int | None, web: bool) -> None:
    assert ServiceSpec(name="x", image=IMG1, port=port).is_web is web


# -- plan_release -----------------------------------------------------------------------------


def test_first_release() -> None:
    actions = plan_release(release(WEB, WORKER), [])
    assert actions == [
        EnsureNetwork("shop", "production"),
        StartService(WEB),
        StartService(WORKER),
        AwaitReady(WEB),
        AwaitReady(WORKER),
        RouteTraffic(WEB),
        Monitor(("web", "worker")),
    ]
    assert_safe_order(actions)


def test_changed_service_is_replaced_and_old_container_stopped_last() -> None:
    old = running(WEB, spec_hash="stale")
    new = dataclasses.replace(WEB, image=IMG2)
    actions = plan_release(release(new), [old])
    assert actions == [EnsureNetwork("shop", "production"), StartService(new), AwaitReady(new), RouteTraffic(new),
                       Monitor(("web",)), Drain((old,)), StopTasks("web", (old,))]
    assert actions[-1] == StopTasks("web", (old,))
    assert_safe_order(actions)


def test_unchanged_running_service_is_kept() -> None:
    old = running(WEB)
    actions = plan_release(release(WEB), [old])
    assert actions == [EnsureNetwork("shop", "production"), KeepService(WEB, (old,)), RouteTraffic(WEB)]
    assert not positions(actions, StopTasks)
    assert not positions(actions, StartService)


def test_kept_web_service_route_refreshed_with_new_hosts() -> None:
    old = running(WEB)
    moved = dataclasses.replace(WEB, hosts=("shop.localhost", "shop.example.com"))
    assert moved.spec_hash == WEB.spec_hash
    actions = plan_release(release(moved), [old])
    assert KeepService(moved, (old,)) in actions
    assert RouteTraffic(moved) in actions
    assert not positions(actions, StopTasks)


@pytest.mark.parametrize("state", ["exited", "created", "restarting", "dead", "paused"])
def test_not_running_container_with_same_hash_is_replaced(state: str) -> None:
    old = running(WEB, state=state)
    actions = plan_release(release(WEB), [old])
    assert not positions(actions, KeepService)
    assert StartService(WEB) in actions
    assert actions[-1] == StopTasks("web", (old,))
    assert_safe_order(actions)


def test_mixed_release() -> None:
    kept_web = running(WEB)
    old_api = running(API, spec_hash="stale")
    old_worker = running(WORKER, state="exited")
    gone = running("legacy")
    new_api = dataclasses.replace(API, environment=(("X", "1"),))
    actions = plan_release(release(WEB, new_api, WORKER, DB), [kept_web, old_api, old_worker, gone])
    assert_safe_order(actions)
    assert actions[0] == EnsureNetwork("shop", "production")
    assert [a for a in actions if isinstance(a, KeepService)] == [KeepService(WEB, (kept_web,))]
    assert [a.service for a in actions if isinstance(a, StartService)] == [new_api, WORKER, DB]
    assert [a.service for a in actions if isinstance(a, RouteTraffic)] == [WEB, new_api]
    stopped = [t for a in actions if isinstance(a, StopTasks) for t in a.tasks]
    assert kept_web not in stopped
    assert {t.id for t in stopped} == {old_api.id, old_worker.id, gone.id}
    assert [a for a in actions if isinstance(a, StopTasks)] == [
        StopTasks("api", (old_api,)), StopTasks("worker", (old_worker,)), StopTasks("legacy", (gone,))]
    assert RemoveRoute("legacy") in actions
    assert RemoveRoute("web") not in actions
    assert RemoveRoute("api") not in actions


def test_removed_service_loses_route_and_container() -> None:
    web, api = running(WEB), running(API)
    actions = plan_release(release(WEB), [web, api])
    assert actions == [
        EnsureNetwork("shop", "production"),
        KeepService(WEB, (web,)),
        RouteTraffic(WEB),
        RemoveRoute("api"),
        Drain((api,)),
        StopTasks("api", (api,)),
    ]
    assert_safe_order(actions)


def test_service_that_stops_being_web_loses_its_route() -> None:
    old = running(API, spec_hash="stale")
    not_web = dataclasses.replace(API, port=None, hosts=())
    actions = plan_release(release(not_web), [old])
    assert RemoveRoute("api") in actions
    assert RouteTraffic(not_web) not in actions
    assert actions[-1] == StopTasks("api", (old,))
    assert_safe_order(actions)


def test_non_web_services_are_never_routed() -> None:
    actions = plan_release(release(WORKER, DB), [])
    assert not positions(actions, RouteTraffic)
    assert [a.service for a in actions if isinstance(a, AwaitReady)] == [WORKER, DB]


def test_start_order_follows_release_order() -> None:
    services = (DB, API, WEB)
    actions = plan_release(release(*services), [])
    assert [a.service for a in actions if isinstance(a, StartService)] == list(services)
    assert [a.service for a in actions if isinstance(a, AwaitReady)] == list(services)
    assert [a.service for a in actions if isinstance(a, RouteTraffic)] == [API, WEB]


def test_duplicate_running_containers_keep_one_and_stop_the_rest() -> None:
    first, second = running(WEB, "c1"), running(WEB, "c2")
    actions = plan_release(release(WEB), [first, second])
    assert [a for a in actions if isinstance(a, KeepService)] == [KeepService(WEB, (first,))]
    assert [a for a in actions if isinstance(a, StopTasks)] == [StopTasks("web", (second,))]
    assert not positions(actions, StartService)


def test_running_container_preferred_over_exited_one_with_same_hash() -> None:
    dead, alive = running(WEB, "dead", state="exited"), running(WEB, "alive")
    actions = plan_release(release(WEB), [dead, alive])
    assert KeepService(WEB, (alive,)) in actions
    assert [a.tasks for a in actions if isinstance(a, StopTasks)] == [(dead,)]
    assert not positions(actions, StartService)


OTHERS = [
    running(WEB, "other-app", app="blog"),
    running("legacy", "other-app-legacy", app="blog"),
    running(WEB, "staging-web", environment="staging"),
    running("legacy", "staging-legacy", environment="staging"),
    running(WEB, "shop2", app="shop2"),
]


@pytest.mark.parametrize("services", [(), (WEB,), (dataclasses.replace(WEB, image=IMG2), WORKER)])
def test_other_apps_and_environments_are_never_touched(services: tuple[ServiceSpec, ...]) -> None:
    mine = running("legacy")
    actions = plan_release(release(*services), [*OTHERS, mine])
    touched = {t.id for a in actions if isinstance(a, (StopTasks, KeepService)) for t in a.tasks}
    assert touched.isdisjoint(c.id for c in OTHERS)
    assert StopTasks("legacy", (mine,)) in actions
    # Containers of other apps/environments never count as "unchanged" for this release.
    assert not positions(actions, KeepService)
    assert [a.service for a in actions if isinstance(a, RemoveRoute)] == ["legacy"]
    assert_safe_order(actions)


def test_plan_for_another_environment_only_sees_that_environment() -> None:
    prod = running(WEB, "prod-web")
    staging = running(WEB, "staging-web", environment="staging")
    actions = plan_release(release(WEB, environment="staging"), [prod, staging])
    assert actions == [EnsureNetwork("shop", "staging"), KeepService(WEB, (staging,)), RouteTraffic(WEB)]


def test_empty_release_stops_everything_of_the_app() -> None:
    a, b = running(WEB), running(WORKER)
    actions = plan_release(release(), [a, b, *OTHERS])
    assert actions == [
        EnsureNetwork("shop", "production"),
        RemoveRoute("web"),
        RemoveRoute("worker"),
        Drain((a, b)),  # (this test's worker has an address, as a web service's container)
        StopTasks("web", (a,)),
        StopTasks("worker", (b,)),
    ]


def test_only_running_containers_with_an_address_are_drained_and_never_a_halted_one() -> None:
    web, worker = running(WEB, spec_hash="stale"), dataclasses.replace(running(WORKER, spec_hash="stale"), upstream=None)
    dead = dataclasses.replace(running(API, spec_hash="stale"), state="exited")
    new_web = dataclasses.replace(WEB, image=IMG2)
    actions = plan_release(release(new_web, dataclasses.replace(WORKER, image=IMG2)), [web, worker, dead])
    [drain] = [a for a in actions if isinstance(a, Drain)]
    assert drain.containers == (web,)
    assert actions.index(drain) > actions.index(RouteTraffic(new_web))
    assert actions.index(drain) < min(i for i, a in enumerate(actions) if isinstance(a, StopTasks))
    stateful = dataclasses.replace(DB, volumes=("data:/var/lib/data",))
    db = running(stateful, spec_hash="stale")  # halted before its new container starts: nothing to drain
    actions = plan_release(release(dataclasses.replace(stateful, image=IMG2)), [db])
    assert HaltTasks("db", (db,)) in actions and not any(isinstance(a, Drain) for a in actions)


def test_plan_is_pure() -> None:
    observed = [running(WEB), running(API, spec_hash="stale")]
    before = list(observed)
    rel = release(WEB, API)
    assert plan_release(rel, observed) == plan_release(rel, observed)
    assert observed == before


# -- plan_removal -----------------------------------------------------------------------------


def test_plan_removal_routes_first_then_containers() -> None:
    web1, web2, worker = running(WEB, "w1"), running(WEB, "w2", state="exited"), running(WORKER)
    staging = running(API, "st", environment="staging")
    actions = plan_removal("shop", [web1, *OTHERS[:2], worker, web2, staging, OTHERS[4]])
    assert actions == [
        RemoveRoute("web"),
        RemoveRoute("worker"),
        RemoveRoute("api", "staging"),
        StopTasks("web", (web1, web2)),  # one per service, in the order the services first appear
        StopTasks("worker", (worker,)),
        StopTasks("api", (staging,)),
    ]
    # one environment: only its routes and containers
    assert plan_removal("shop", [web1, staging, worker], "staging") == [RemoveRoute("api", "staging"),
                                                                       StopTasks("api", (staging,))]
    # one service in two environments: a set of tasks each (one Swarm service each, on a cluster)
    web_staging = running(WEB, "ws", environment="staging")
    assert [a for a in plan_removal("shop", [web1, web_staging]) if isinstance(a, StopTasks)] == [
        StopTasks("web", (web1,)), StopTasks("web", (web_staging,))]


def test_plan_removal_of_app_with_nothing_running() -> None:
    assert plan_removal("shop", OTHERS[:2]) == []
    assert plan_removal("shop", []) == []


# -- stateful services --------------------------------------------------------------------------
DATA = dataclasses.replace(DB, volumes=("data:/var/lib/db",))


def test_a_stateful_service_is_halted_before_its_new_container_starts() -> None:
    old_db, old_web = running(DATA, spec_hash="old"), running(WEB, spec_hash="old")
    actions = plan_release(release(WEB, DATA), [old_db, old_web])
    halt = actions.index(HaltTasks("db", (old_db,)))
    assert halt < actions.index(StartService(DATA))
    assert all(not isinstance(a, StartService) for a in actions[:halt])  # before anything starts
    # a stateless one stays up until the switch
    assert [a for a in actions if isinstance(a, HaltTasks)] == [HaltTasks("db", (old_db,))]
    assert (actions.index(StartService(WEB)) < actions.index(RouteTraffic(WEB))
            < actions.index(StopTasks("web", (old_web,))))
    # removed once the release is live
    assert StopTasks("db", (old_db,)) in actions[actions.index(RouteTraffic(WEB)):]


def test_an_unchanged_stateful_service_is_kept_and_never_halted() -> None:
    old_db = running(DATA)
    actions = plan_release(release(DATA), [old_db])
    assert KeepService(DATA, (old_db,)) in actions
    assert not [a for a in actions if isinstance(a, HaltTasks | StopTasks | StartService)]


def test_volumes_change_the_spec_hash_only_when_there_are_some() -> None:
    assert dataclasses.replace(DB, volumes=()).spec_hash == DB.spec_hash
    assert DATA.spec_hash != DB.spec_hash
    assert dataclasses.replace(DB, volumes=("data:/other",)).spec_hash != DATA.spec_hash
    assert DATA.stateful and not DB.stateful


# -- depends_on conditions: service_healthy, service_completed_successfully ------------------------
HEALTHY_DB = dataclasses.replace(DB, healthcheck=("CMD", "pg_isready"), volumes=("data:/var/lib/db",))
CACHE = ServiceSpec(name="cache", image="redis:7")
MIGRATE = ServiceSpec(name="migrate", image=IMG1, command=("migrate",), one_shot=True, depends_on=("db",),
                      after_healthy=("db",))
GATED_WEB = dataclasses.replace(WEB, depends_on=("db", "migrate", "cache"), after_healthy=("db",),
                                after_completed=("migrate",))
GATED = (HEALTHY_DB, CACHE, MIGRATE, GATED_WEB)  # in start order, as domain/stack.py gives them


def steps(actions: list) -> list[str]:
    """The start and wait actions, as short text."""
    return [f"{type(a).__name__} {a.service.name}" for a in actions if isinstance(a, StartService | AwaitReady)]


def assert_gated_order(actions: list, services: tuple[ServiceSpec, ...]) -> None:
    """What every plan keeps with conditions: a service starts after its dependencies started, after
    the AwaitReady of those it waits for (healthy, completed); stateful halts come before any start;
    every start is awaited once; traffic moves once all are ready; old containers stop last."""
    start = {a.service.name: i for i, a in enumerate(actions) if isinstance(a, StartService)}
    ready = {a.service.name: i for i, a in enumerate(actions) if isinstance(a, AwaitReady)}
    assert sorted(start) == sorted(n for n in ready if n in start)
    for s in services:
        if s.name not in start:
            continue
        for d in s.depends_on:
            assert start.get(d, -1) < start[s.name], (s.name, d)
        for d in (*s.after_healthy, *s.after_completed):
            assert ready.get(d, -1) < start[s.name], (s.name, d)
    routes, stops = positions(actions, RouteTraffic), positions(actions, StopTasks)
    halts = positions(actions, HaltTasks)
    if ready and routes:
        assert max(ready.values()) < min(routes)
    if start and routes:
        assert max(start.values()) < min(routes)
    if routes and stops:
        assert max(routes) < min(stops)
    if halts and start:
        assert max(halts) < min(start.values())


def test_services_start_after_the_dependencies_they_wait_for_are_ready() -> None:
    actions = plan_release(release(*GATED), [])
    assert steps(actions) == [
        "StartService db", "StartService cache",  # nothing to wait for
        "AwaitReady db",  # migrate waits until db is healthy
        "StartService migrate", "AwaitReady migrate",  # web waits until migrate exited 0
        "StartService web",
        "AwaitReady cache", "AwaitReady web",  # the rest, before traffic moves
    ]
    assert_gated_order(actions, GATED)
    assert [a.service.name for a in actions if isinstance(a, RouteTraffic)] == ["web"]  # never the one-shot


def test_a_service_started_after_a_gated_one_follows_it() -> None:
    worker = ServiceSpec(name="worker", image=IMG1, depends_on=("migrate",))  # service_started
    actions = plan_release(release(HEALTHY_DB, MIGRATE, worker), [])
    assert steps(actions) == ["StartService db", "AwaitReady db", "StartService migrate", "StartService worker",
                              "AwaitReady migrate", "AwaitReady worker"]


def test_without_conditions_every_start_comes_before_every_wait() -> None:
    plain = tuple(dataclasses.replace(s, after_healthy=(), after_completed=(), one_shot=False) for s in GATED)
    actions = plan_release(release(*plain), [])
    assert steps(actions) == [f"StartService {s.name}" for s in plain] + [f"AwaitReady {s.name}" for s in plain]
    assert_safe_order(actions)


def test_a_one_shot_service_that_completed_unchanged_is_kept_not_run_again() -> None:
    db, done = running(HEALTHY_DB), running(MIGRATE, state="exited")
    done = dataclasses.replace(done, exit_code=0)
    new_web = dataclasses.replace(GATED_WEB, image=IMG2)
    actions = plan_release(release(HEALTHY_DB, CACHE, MIGRATE, new_web), [db, done])
    assert KeepService(MIGRATE, (done,)) in actions and KeepService(HEALTHY_DB, (db,)) in actions
    assert steps(actions) == ["StartService cache", "StartService web", "AwaitReady cache", "AwaitReady web"]
    gone = [t for a in actions if isinstance(a, StopTasks | HaltTasks) for t in a.tasks]
    assert done not in gone and db not in gone


@pytest.mark.parametrize("exit_code,spec_hash", [(1, None), (None, None), (0, "old")])
def test_a_one_shot_service_that_failed_or_changed_runs_again(exit_code: int | None, spec_hash: str | None) -> None:
    old = dataclasses.replace(running(MIGRATE, state="exited", spec_hash=spec_hash), exit_code=exit_code)
    actions = plan_release(release(*GATED), [running(HEALTHY_DB), old])
    assert steps(actions) == ["StartService cache", "StartService migrate", "AwaitReady migrate",
                              "StartService web", "AwaitReady cache", "AwaitReady web"]
    assert actions[-1] == StopTasks("migrate", (old,))
    assert_gated_order(actions, GATED)


def test_a_one_shot_service_still_running_unchanged_is_kept_and_waited_for() -> None:
    busy = running(MIGRATE)
    actions = plan_release(release(*GATED), [running(HEALTHY_DB), busy])
    assert KeepService(MIGRATE, (busy,)) in actions
    assert steps(actions) == ["StartService cache", "AwaitReady migrate", "StartService web", "AwaitReady cache",
                              "AwaitReady web"]


def test_a_long_running_service_that_exited_0_is_replaced() -> None:
    exited = dataclasses.replace(running(CACHE, state="exited"), exit_code=0)
    actions = plan_release(release(CACHE), [exited])
    assert StartService(CACHE) in actions and actions[-1] == StopTasks("cache", (exited,))


def test_a_stateful_dependency_is_halted_before_anything_starts_even_with_conditions() -> None:
    old_db = running(HEALTHY_DB, spec_hash="old")
    actions = plan_release(release(*GATED), [old_db])
    assert actions.index(HaltTasks("db", (old_db,))) < min(positions(actions, StartService))
    assert_gated_order(actions, GATED)


def test_gated_plans_keep_their_order_for_any_dependency_graph() -> None:
    import random

    rng = random.Random(7)
    for _ in range(300):
        made: list[ServiceSpec] = []
        for i in range(rng.randint(1, 7)):
            deps = [d.name for d in made if rng.random() < 0.4]
            healthy = tuple(d for d in deps if rng.random() < 0.4)
            completed = tuple(d for d in deps if d not in healthy and rng.random() < 0.4)
            made.append(ServiceSpec(name=f"s{i}", image=IMG1, port=8000 if rng.random() < 0.3 else None,
                                    depends_on=tuple(deps), after_healthy=healthy, after_completed=completed,
                                    volumes=("v:/v",) if rng.random() < 0.2 else ()))
        once = {d for s in made for d in s.after_completed}
        services = tuple(dataclasses.replace(s, one_shot=s.name in once, port=None if s.name in once else s.port)
                         for s in made)
        observed = [dataclasses.replace(running(s, state=rng.choice(["running", "exited"]),
                                                spec_hash=None if rng.random() < 0.5 else "old"),
                                        exit_code=rng.choice([0, 1, None]))
                    for s in services if rng.random() < 0.6]
        actions = plan_release(release(*services), observed)
        assert_gated_order(actions, services)
        started = [a.service.name for a in actions if isinstance(a, StartService)]
        assert len(started) == len(set(started))


def test_a_service_declared_stop_first_is_halted_first_with_all_its_replicas() -> None:
    """compose's deploy.update_config.order: stop-first, or dockyard.yml's stateful: true."""
    web = dataclasses.replace(WEB, stop_first=True, replicas=2)
    old = [running(web, f"old-{i}", spec_hash="old") for i in range(2)]
    old = [dataclasses.replace(c, replica=i) for i, c in enumerate(old)]
    actions = plan_release(release(web), old)
    assert [a for a in actions if isinstance(a, HaltTasks)] == [HaltTasks("web", tuple(old))]  # both, at once
    halt = actions.index(HaltTasks("web", tuple(old)))
    assert halt < actions.index(StartService(web, (0, 1))) < actions.index(RouteTraffic(web))
    assert not any(isinstance(a, Drain) for a in actions)  # halted: no request left to drain
    assert [a for a in actions if isinstance(a, StopTasks)] == [StopTasks("web", tuple(old))]
    assert web.spec_hash == dataclasses.replace(web, stop_first=False).spec_hash  # no new container for the order


# -- batches (compose deploy.update_config.parallelism) --------------------------------------------
def olds(service: ServiceSpec, count: int) -> list[RunningService]:
    return [dataclasses.replace(running(service, f"old-{i}", spec_hash="old"), replica=i) for i in range(count)]


def test_replicas_are_replaced_in_batches_start_first() -> None:
    web = dataclasses.replace(WEB, replicas=4, parallelism=2)
    old = olds(web, 4)
    actions = plan_release(release(web), old)
    assert actions[1:] == [
        StartService(web, (0, 1), 1), AwaitReady(web, (0, 1)),  # batch 1
        RouteTraffic(web, (old[2], old[3])),  # batch 1's new ones, and the old ones not replaced yet
        Drain((old[0], old[1]), 1), HaltTasks("web", (old[0], old[1]), (), 1),
        StartService(web, (2, 3), 2), AwaitReady(web, (2, 3)),
        RouteTraffic(web, ()), Drain((old[2], old[3]), 2), HaltTasks("web", (old[2], old[3]), (), 2),
        RouteTraffic(web), Monitor(("web",)),
        StopTasks("web", tuple(old)),  # removed once live; nothing left to drain then
    ]


def test_replicas_are_replaced_in_batches_stop_first() -> None:
    web = dataclasses.replace(WEB, replicas=2, parallelism=1, stop_first=True)
    old = olds(web, 2)
    actions = plan_release(release(web), old)
    assert actions[1:] == [
        HaltTasks("web", (old[0],), (), 1), StartService(web, (0,), 1), AwaitReady(web, (0,)),
        RouteTraffic(web, (old[1],)),
        HaltTasks("web", (old[1],), (), 2), StartService(web, (1,), 2), AwaitReady(web, (1,)), RouteTraffic(web, ()),
        RouteTraffic(web), Monitor(("web",)), StopTasks("web", (old[0], old[1])),
    ]


def test_a_last_batch_takes_the_old_replicas_a_scale_down_leaves_and_a_worker_rolls_unrouted() -> None:
    worker = dataclasses.replace(WORKER, replicas=2, parallelism=1)
    old = olds(worker, 3)
    actions = plan_release(release(worker), old)
    assert actions[1:] == [
        StartService(worker, (0,), 1), AwaitReady(worker, (0,)), HaltTasks("worker", (old[0],), (), 1),
        StartService(worker, (1,), 2), AwaitReady(worker, (1,)), HaltTasks("worker", (old[1], old[2]), (), 2),
        Monitor(("worker",)), RemoveRoute("worker"), StopTasks("worker", tuple(old)),
    ]


def test_no_batches_when_the_parallelism_covers_every_replica_or_nothing_is_replaced() -> None:
    web = dataclasses.replace(WEB, replicas=2, parallelism=2)
    def kinds(service: ServiceSpec) -> list[str]:
        return [type(a).__name__ for a in plan_release(release(service), olds(service, 2))]

    assert kinds(web) == kinds(dataclasses.replace(web, parallelism=0))
    assert "HaltTasks" not in kinds(web)
    fresh = dataclasses.replace(WEB, replicas=3, parallelism=1)
    assert not [a for a in plan_release(release(fresh), []) if isinstance(a, HaltTasks)]


# -- service-level actions: one per service, with all its tasks ------------------------------------
def test_a_service_with_three_replicas_is_started_and_awaited_by_one_action_each() -> None:
    web = dataclasses.replace(WEB, replicas=3)
    actions = plan_release(release(web), [])
    assert [a for a in actions if isinstance(a, StartService)] == [StartService(web, (0, 1, 2))]
    assert [a for a in actions if isinstance(a, AwaitReady)] == [AwaitReady(web, (0, 1, 2))]
    assert actions.index(StartService(web, (0, 1, 2))) < actions.index(AwaitReady(web, (0, 1, 2))) < actions.index(
        RouteTraffic(web))
    assert_safe_order(actions)


def test_replacing_two_old_containers_of_a_service_stops_them_with_one_action() -> None:
    web = dataclasses.replace(WEB, replicas=2)
    old = olds(web, 2)
    new = dataclasses.replace(web, image=IMG2)
    actions = plan_release(release(new), old)
    assert [a for a in actions if isinstance(a, StopTasks)] == [StopTasks("web", (old[0], old[1]))]
    assert actions[-1] == StopTasks("web", (old[0], old[1]))
    assert [a for a in actions if isinstance(a, Drain)] == [Drain((old[0], old[1]))]  # drained together, first
    assert not positions(actions, HaltTasks)
    assert_safe_order(actions)


def test_a_release_in_batches_starts_each_batch_with_one_action_numbered_by_its_batch() -> None:
    web = dataclasses.replace(WEB, replicas=6, parallelism=2)
    old = olds(web, 6)
    actions = plan_release(release(web), old)
    starts = [a for a in actions if isinstance(a, StartService)]
    assert [a.replicas for a in starts] == [(0, 1), (2, 3), (4, 5)]  # one per batch, its replicas together
    assert [a.replicas for a in actions if isinstance(a, AwaitReady)] == [(0, 1), (2, 3), (4, 5)]
    assert [a.batch for a in starts] == [1, 2, 3]  # each start names its batch
    # ... the same number as the halt of the old containers that batch replaces
    halts = [a for a in actions if isinstance(a, HaltTasks)]
    assert [(a.batch, a.tasks) for a in halts] == [(1, tuple(old[0:2])), (2, tuple(old[2:4])), (3, tuple(old[4:6]))]
    # each batch's start comes after the previous batch's old ones were halted
    for start, previous in zip(starts[1:], halts, strict=False):
        assert actions.index(previous) < actions.index(start)


def test_the_first_batch_start_is_numbered_1() -> None:
    web = dataclasses.replace(WEB, replicas=4, parallelism=2)
    actions = plan_release(release(web), olds(web, 4))
    assert [a.batch for a in actions if isinstance(a, StartService)] == [1, 2]
