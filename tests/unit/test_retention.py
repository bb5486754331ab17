"""Retention, pure (domain/retention.py): which built images garbage collection keeps and why.
Examples for the rules, then properties over random histories: nothing live, under way, within
the newest N releases of its environment, used by a container or of a busy app is ever chosen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.domain import retention
from dockyard.domain.model import BuiltImage, ReleaseStatus, ServiceSpec
from dockyard.domain.records import ReleaseRecord

REGISTRY = "127.0.0.1:5100"
LIVE, SUPERSEDED, FAILED, PENDING = (ReleaseStatus.LIVE, ReleaseStatus.SUPERSEDED, ReleaseStatus.FAILED,
                                     ReleaseStatus.PENDING)


def image(n: int, app: str = "shop", name: str = "web", commit: str | None = None) -> BuiltImage:
    return BuiltImage(app=app, repository=f"{app}/{name}", version=f"{n}.0", tag=f"{n}.0",
                      digest=f"sha256:{n:064x}", image_id=f"sha256:{n + 10_000:064x}",
                      commit=commit or f"c{n}", size=1000 * n, dockerfile="Dockerfile")


def spec(built: BuiltImage, name: str = "web", pinned: bool = True) -> ServiceSpec:
    reference = (f"{REGISTRY}/{built.repository}@{built.digest}" if pinned
                 else f"{REGISTRY}/{built.repository}:{built.tag}")
    return ServiceSpec(name=name, image=reference, image_id=built.image_id)


def release(id_: int, status: ReleaseStatus, *built: BuiltImage, env: str = "production",
            app: str = "shop", pinned: bool = True) -> ReleaseRecord:
    services = tuple(spec(b, f"s{i}", pinned) for i, b in enumerate(built))
    commit = built[0].commit if built else "none"
    return ReleaseRecord(id=id_, app=app, environment=env, commit=commit, status=status, services=services,
                         artifact=services if pinned else ())


def versions(plan: retention.Plan, keep: bool) -> list[str]:
    return sorted(d.image.version for d in plan.decisions if d.keep == keep)


# -- the rules, by example ----------------------------------------------------------------------------
def test_the_live_release_and_the_newest_ones_are_kept_the_older_ones_go() -> None:
    images = [image(n) for n in (1, 2, 3, 4)]
    releases = [release(n, SUPERSEDED, images[n - 1]) for n in (1, 2, 3)] + [release(4, LIVE, images[3])]
    plan = retention.plan(images, releases, keep=2)
    assert versions(plan, keep=True) == ["3.0", "4.0"]
    assert versions(plan, keep=False) == ["1.0", "2.0"]
    why = {d.image.version: d.why for d in plan.decisions}
    assert why["4.0"] == "release 4 is production's live release"
    assert why["3.0"] == "release 3 is one of production's 2 newest"
    assert why["1.0"] == "its releases are older than the 2 kept"
    assert plan.local == (images[0].image_id, images[1].image_id)
    assert plan.manifests == (("shop/web", images[0].digest), ("shop/web", images[1].digest))


def test_keep_counts_each_environment_on_its_own_and_never_drops_the_live_release() -> None:
    images = [image(n) for n in range(1, 7)]
    releases = [release(1, SUPERSEDED, images[0]), release(2, LIVE, images[1]),  # production
                release(3, SUPERSEDED, images[2], env="recette"), release(4, SUPERSEDED, images[3], env="recette"),
                release(5, LIVE, images[4], env="recette")]
    plan = retention.plan(images, releases, keep=1)
    assert versions(plan, keep=True) == ["2.0", "5.0"]
    # 6.0 was built and never released: nothing keeps it
    assert {d.image.version: d.why for d in plan.collected}["6.0"] == "no release that served runs it"
    assert retention.plan(images, releases, keep=0).kept == plan.kept  # 0 means 1: the live release stays


def test_a_deploy_that_changed_nothing_counts_once() -> None:
    images = [image(n) for n in (1, 2, 3)]
    releases = [release(1, SUPERSEDED, images[0]), release(2, SUPERSEDED, images[1]),
                release(3, SUPERSEDED, images[2]), release(4, LIVE, images[2])]  # 4: 3 again
    assert versions(retention.plan(images, releases, keep=2), keep=True) == ["2.0", "3.0"]


def test_a_rollback_keeps_what_it_returned_to_and_the_release_it_left() -> None:
    images = [image(n) for n in (1, 2, 3)]
    releases = [release(1, SUPERSEDED, images[0]), release(2, SUPERSEDED, images[1]),
                release(3, SUPERSEDED, images[2]), release(4, LIVE, images[0])]  # rolled back to 1
    plan = retention.plan(images, releases, keep=2)
    assert versions(plan, keep=True) == ["1.0", "3.0"] and versions(plan, keep=False) == ["2.0"]


def test_failed_releases_do_not_count_and_keep_nothing_but_releases_under_way_do() -> None:
    images = [image(n) for n in (1, 2, 3, 4)]
    releases = [release(1, LIVE, images[0]), release(2, FAILED, images[1]), release(3, FAILED, images[2]),
                release(4, PENDING, images[3], pinned=False)]  # under way: named by tag, not pinned yet
    plan = retention.plan(images, releases, keep=1)
    assert versions(plan, keep=True) == ["1.0", "4.0"]
    assert {d.image.version: d.why for d in plan.kept}["4.0"] == "release 4 of production is under way"
    assert {d.image.version: d.why for d in plan.collected}["2.0"] == "no release that served runs it"


def test_an_image_a_container_uses_stays_by_id_or_by_reference() -> None:
    images = [image(n) for n in (1, 2, 3)]
    releases = [release(1, SUPERSEDED, images[0]), release(2, SUPERSEDED, images[1]), release(3, LIVE, images[2])]
    in_use = [images[0].image_id, f"{REGISTRY}/shop/web@{images[1].digest}"]
    plan = retention.plan(images, releases, keep=1, in_use=in_use)
    assert versions(plan, keep=False) == []
    assert {d.image.version: d.why for d in plan.kept}["1.0"] == "a container uses it"


def test_images_built_from_a_kept_release_s_commit_stay_a_base_no_service_runs_too() -> None:
    base, web, old = image(1, name="base", commit="k"), image(2, commit="k"), image(3, name="base", commit="x")
    plan = retention.plan([base, web, old], [release(5, SUPERSEDED, old), release(6, LIVE, web)], keep=1)
    assert {d.image.repository: d.why for d in plan.kept if d.image.commit == "k"} == {
        "shop/base": "built from the commit of release 6, which is kept",
        "shop/web": "release 6 is production's live release"}
    assert [d.image for d in plan.collected] == [old]


def test_an_app_with_a_job_under_way_keeps_everything_its_releases_do_not_name_yet() -> None:
    images = [image(1), image(2), image(3, app="blog"), image(4, app="blog")]
    releases = [release(1, LIVE, images[0]), release(3, LIVE, images[2], app="blog")]
    plan = retention.plan(images, releases, keep=1, busy=["shop"])
    assert {d.image.version: d.why for d in plan.kept}["2.0"] == "a job of shop is queued or running"
    assert [d.image.version for d in plan.collected] == ["4.0"]  # blog's: no job of blog runs


def test_content_a_kept_image_shares_stays_on_the_host_and_in_the_registry() -> None:
    old = image(1)
    same_content = BuiltImage(**{**old.__dict__, "repository": "shop/copy", "digest": f"sha256:{99:064x}"})
    releases = [release(1, SUPERSEDED, old), release(2, LIVE, same_content)]
    plan = retention.plan([old, same_content], releases, keep=1)
    # both are named by the content id the live release runs: kept
    assert [d.image for d in plan.collected] == [] and plan.local == () and plan.manifests == ()
    # two rows of one manifest (a re-push) are decided together
    again = BuiltImage(**{**old.__dict__, "version": "1.0-again"})
    plan = retention.plan([old, again, image(2)], [release(1, SUPERSEDED, old), release(2, LIVE, image(2))], 1)
    assert plan.manifests == (("shop/web", old.digest),) and plan.local == (old.image_id,)


def test_reference_keys_leave_the_registry_host_out() -> None:
    assert retention.reference_keys(f"{REGISTRY}/shop/web@sha256:{1:064x}") >= {f"shop/web@sha256:{1:064x}"}
    assert retention.reference_keys(f"{REGISTRY}/shop/web:1.0") >= {"shop/web:1.0"}
    assert retention.reference_keys("sha256:" + "a" * 64) == {"sha256:" + "a" * 64}
    assert retention.reference_keys("") == frozenset()
    assert retention.reference_keys("Not A Reference!") == {"Not A Reference!"}


# -- properties -----------------------------------------------------------------------------------------
ENVS = ("production", "recette")
APPS = ("shop", "blog")


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[BuiltImage], list[ReleaseRecord], int, list[str], list[str]]:
    """Random apps' histories: images, releases per environment (at most one live), containers'
    images, busy apps."""
    pool = [image(n, app=APPS[n % 2], name=draw(st.sampled_from(("web", "api"))), commit=f"c{n % 7}")
            for n in range(1, draw(st.integers(1, 14)) + 1)]
    releases: list[ReleaseRecord] = []
    next_id = 1
    for app in APPS:
        own = [i for i in pool if i.app == app]
        if not own:
            continue
        for env in ENVS:
            statuses = draw(st.lists(st.sampled_from((SUPERSEDED, FAILED, PENDING)), max_size=8))
            if draw(st.booleans()):
                statuses.append(LIVE)
            for status in statuses:
                chosen = draw(st.lists(st.sampled_from(own), min_size=1, max_size=2, unique=True))
                releases.append(release(next_id, status, *chosen, env=env, app=app,
                                        pinned=status != PENDING or draw(st.booleans())))
                next_id += 1
    keep = draw(st.integers(0, 4))
    in_use = draw(st.lists(st.sampled_from([i.image_id for i in pool]), max_size=3))
    busy = draw(st.lists(st.sampled_from(APPS), max_size=1))
    return pool, releases, keep, in_use, busy


def must_keep(images: Sequence[BuiltImage], releases: Sequence[ReleaseRecord], keep: int, in_use: Sequence[str],
              busy: Sequence[str]) -> set[BuiltImage]:
    """The rule said again, plainly: what no collection may ever choose."""
    protected: set[str] = set(in_use)
    for app in APPS:
        for env in ENVS:
            own = sorted((r for r in releases if (r.app, r.environment) == (app, env)), key=lambda r: -r.id)
            sets: list[set[str]] = []
            for r in own:
                ids = {s.image_id for s in r.services}
                if r.status in (LIVE, PENDING):
                    protected |= ids
                if r.status in (LIVE, SUPERSEDED) and ids not in sets and len(sets) < max(1, keep):
                    sets.append(ids)
            protected |= {i for s in sets for i in s}
    return {i for i in images if i.image_id in protected or i.app in busy}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_nothing_live_under_way_retained_in_use_or_busy_is_ever_collected(
    history: tuple[list[BuiltImage], list[ReleaseRecord], int, list[str], list[str]],
) -> None:
    images, releases, keep, in_use, busy = history
    plan = retention.plan(images, releases, keep, in_use, busy)
    collected = {d.image for d in plan.collected}
    assert not collected & must_keep(images, releases, keep, in_use, busy)
    assert len(plan.decisions) == len(images)
    # what is removed from the host or the registry is never what a kept image is
    kept = plan.kept
    assert not set(plan.local) & {d.image.image_id for d in kept}
    assert not set(plan.manifests) & {(d.image.repository, d.image.digest) for d in kept}
    # and every image of every release kept for rollback stays, by content and by manifest
    for r in releases:
        if r.id in retention.retained(releases, max(1, keep)):
            for s in r.services:
                assert s.image_id not in plan.local
                assert (s.image.split("/", 1)[1].partition("@")[0], s.image.partition("@")[2]) not in plan.manifests


@settings(max_examples=200, deadline=None)
@given(histories())
def test_more_retention_never_collects_more(
    history: tuple[list[BuiltImage], list[ReleaseRecord], int, list[str], list[str]],
) -> None:
    images, releases, keep, in_use, busy = history
    fewer = {d.image for d in retention.plan(images, releases, keep + 1, in_use, busy).collected}
    assert fewer <= {d.image for d in retention.plan(images, releases, keep, in_use, busy).collected}


def test_a_source_repo_s_newest_build_of_each_image_version_and_branch_stays() -> None:
    """What the deploy repo's stack, or another repo's FROM, resolves to next is never collected."""
    def built(n: int, version: str, branch: str, repo: str = "base") -> BuiltImage:
        return replace(image(n), repository="shop/nodejs", name="x/nodejs", source_version=version, branch=branch,
                       repo=repo, version=f"{version}+g{n}", tag=f"{version}-g{n}")

    newest_first = [built(5, "0.2", "master"), built(4, "0.1", "master"), built(3, "0.1", "develop"),
                    built(2, "0.1", "master"), image(1)]
    got = retention.plan(newest_first, [], keep=1)
    assert versions(got, keep=True) == ["0.1+g3", "0.1+g4", "0.2+g5"]
    assert "the newest build of x/nodejs:0.1 by base on master" in got.kept[1].why
    assert {d.image.version for d in got.collected} == {"0.1+g2", image(1).version}


def test_builds_versioned_by_their_commit_keep_only_the_newest_and_a_removed_repo_keeps_none() -> None:
    def built(n: int, repo: str = "api") -> BuiltImage:
        commit = f"{n:08x}" + "0" * 32
        version = f"g{commit[:8]}"  # no VERSION header: the commit's
        return replace(image(n, commit=commit), repository="shop/api", source_version=version, version=version,
                       tag=version, branch="main", repo=repo)

    newest_first = [built(3), built(2), built(1)]
    assert versions(retention.plan(newest_first, [], keep=1), keep=True) == [newest_first[0].version]
    assert versions(retention.plan(newest_first, [], keep=1, repos={("shop", "api")}), keep=True) == [
        newest_first[0].version]
    assert versions(retention.plan(newest_first, [], keep=1, repos={("shop", "web")}), keep=True) == []
