"""Recovery after dockyard stopped in the middle of a release: which containers go, which halted
ones start again (pure, with a property over random observed states), and the records on the
fakes (a pending release is marked failed; the live one keeps serving)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.domain.model import App, ReleaseStatus, RunningService, ServiceSpec
from dockyard.fakes import FakeOrchestrator, FakeStore
from dockyard.planning.recovery import repairs, serving
from dockyard.services.recovery import INTERRUPTED, Recovery

IMG1 = "reg:5000/shop/shop@sha256:" + "1" * 64
IMG2 = "reg:5000/shop/shop@sha256:" + "2" * 64
WEB = ServiceSpec(name="web", image=IMG1, port=3000, hosts=("shop.localhost",))
DB = ServiceSpec(name="db", image="postgres:16", volumes=("data:/d",))
MIGRATE = ServiceSpec(name="migrate", image=IMG1, one_shot=True)


def box(service: ServiceSpec, release: int, replica: int = 0, state: str = "running", spec_hash: str = "") -> RunningService:
    return RunningService(id=f"{service.name}-{release}-{replica}-{state}", app="shop", service=service.name,
                          release=release, image=service.image, state=state, upstream=f"10.0.0.{release}:3000",
                          spec_hash=spec_hash or service.spec_hash, replica=replica)


def what(live: int | None, services: tuple[ServiceSpec, ...], observed: list[RunningService]) -> dict[str, str]:
    return {r.container.id: "resume" if r.resume else "remove" for r in repairs(live, services, observed)}


def test_containers_of_an_attempt_that_never_went_live_are_removed() -> None:
    live, new = box(WEB, 1), box(dataclasses.replace(WEB, image=IMG2), 2)
    assert what(1, (WEB,), [live, new]) == {new.id: "remove"}
    assert what(None, (), [new]) == {new.id: "remove"}  # nothing live: everything is of a failed attempt


def test_a_container_of_a_newer_release_is_never_serving_even_with_the_same_spec() -> None:
    live, same = box(WEB, 1), box(WEB, 2)  # a redeploy of the same spec, interrupted before it went live
    assert serving(WEB, [same, live], live=1) == [live]
    assert what(1, (WEB,), [same, live]) == {same.id: "remove"}


def test_a_halted_stateful_container_starts_again_and_the_new_one_goes() -> None:
    halted, new = box(DB, 1, state="exited"), box(dataclasses.replace(DB, image="postgres:17"), 2)
    assert what(1, (DB,), [halted, new]) == {halted.id: "resume", new.id: "remove"}


def test_old_containers_go_only_once_every_live_service_runs_all_its_replicas() -> None:
    old = box(dataclasses.replace(WEB, image=IMG2), 1)  # the clean-up after the switch never ran
    live = dataclasses.replace(WEB, replicas=2)
    both = [box(live, 2, 0), box(live, 2, 1)]
    assert what(2, (live,), [old, *both]) == {old.id: "remove"}
    assert what(2, (live,), [old, both[0]]) == {}  # one replica missing: remove nothing
    drifted = box(WEB, 2, spec_hash="computed-by-an-older-dockyard")
    assert what(2, (WEB,), [old, drifted]) == {}  # nothing matches the live spec: touch nothing


def test_one_shot_containers_are_kept_done_or_running() -> None:
    done = box(MIGRATE, 1, state="exited")
    assert what(1, (WEB, MIGRATE), [box(WEB, 1), done]) == {}


releases = st.integers(1, 4)
states = st.sampled_from(["running", "exited"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([WEB, dataclasses.replace(WEB, image=IMG2), DB]), releases,
                          st.integers(0, 2), states), max_size=8, unique_by=lambda t: (t[0].image, t[0].name, t[1], t[2])),
       st.one_of(st.none(), releases), st.integers(0, 3))
def test_recovery_never_removes_what_the_live_release_serves_and_leaves_no_newer_container(
    boxes: list[tuple[ServiceSpec, int, int, str]], live: int | None, replicas: int
) -> None:
    services = (dataclasses.replace(WEB, replicas=replicas), DB) if live else ()
    observed = [box(s, r, i, state) for s, r, i, state in boxes]
    decided = what(live, services, observed)
    for spec in services:
        for c in serving(spec, observed, live):
            assert c.id not in decided  # what serves the live release stays as it is
    for c in observed:
        if live is None or c.release > live:
            assert decided.get(c.id) == "remove"
        if decided.get(c.id) == "resume":
            assert c.state != "running" and live is not None and c.release <= live


# -- on the fakes ---------------------------------------------------------------------------------
def test_recover_marks_an_interrupted_release_failed_and_keeps_the_live_one(tmp_path: Path) -> None:
    store, orchestrator = FakeStore(), FakeOrchestrator()
    store.create_app(App("shop"))
    live = store.create_release("shop", "production", "a" * 40, None)
    store.set_release(live, ReleaseStatus.LIVE, (WEB,))
    pending = store.create_release("shop", "production", "b" * 40, None)
    new = dataclasses.replace(WEB, image=IMG2)
    store.set_release(pending, ReleaseStatus.PENDING, (new,))
    orchestrator.ensure_network("shop", "production")
    (serving_now,) = orchestrator.start("shop", live, "production", WEB)
    orchestrator.start("shop", pending, "production", new)  # dockyard was killed here

    restored: list[str] = []
    done = Recovery(store, orchestrator).recover(lambda: restored.append(orchestrator.events[-1]))
    assert store.get_release(pending).status == ReleaseStatus.FAILED
    assert store.get_release(pending).error == INTERRUPTED
    assert store.get_release(live).status == ReleaseStatus.LIVE
    assert [c.id for c in orchestrator.observe("shop")] == [serving_now.id]
    assert any(f"release {pending} interrupted" in line for line in done)
    assert any("started by a release that never went live" in line for line in done)
    # the routes were restored before the stray container went, and it was drained first
    assert restored and not restored[0].startswith("stop")
    assert [e.split()[0] for e in orchestrator.events[-2:]] == ["drain", "stop"]
    assert Recovery(store, orchestrator).recover(lambda: None) == []  # nothing left to do
