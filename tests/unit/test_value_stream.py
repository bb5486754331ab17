"""The value stream's moments of a release: recorded by the deploy, read back from the records
alone (the pure part), and kept by the Deployer on the fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dockyard.domain import value_stream
from dockyard.domain.model import ReleaseStatus
from dockyard.domain.records import ReleaseRecord
from tests.support import static_site
from tests.unit.test_deployer import World
from tests.unit.test_deployer import world as world  # the fixture, re-exported

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def record(status: ReleaseStatus, timeline: dict[str, object], finished: datetime | None) -> ReleaseRecord:
    return ReleaseRecord(id=3, app="shop", environment="production", commit="c" * 40, status=status,
                         created_at=T0 + timedelta(minutes=20), finished_at=finished, timeline=timeline)


def test_a_live_release_tells_its_moments_and_its_lead_time_from_the_first_commit() -> None:
    kept = value_stream.recorded([("b" * 40, int((T0 + timedelta(minutes=5)).timestamp())),
                                  ("a" * 40, int(T0.timestamp()))],
                                 pushed_at=T0 + timedelta(minutes=10), build_started_at=T0 + timedelta(minutes=11),
                                 built_at=T0 + timedelta(minutes=19))
    assert kept["commits"] == [["b" * 40, "2026-11-28T09:05:00Z"], ["a" * 40, "2026-11-28T09:00:00Z"]]
    got = value_stream.timeline(record(ReleaseStatus.LIVE, kept, T0 + timedelta(minutes=21)))
    assert got == {
        "commits": 2, "first_committed_at": "2026-11-28T09:00:00Z", "last_committed_at": "2026-11-28T09:05:00Z",
        "pushed_at": "2026-11-28T09:10:00Z", "build_started_at": "2026-11-28T09:11:00Z",
        "built_at": "2026-11-28T09:19:00Z", "approval_requested_at": None, "approved_at": None,
        "release_started_at": "2026-11-28T09:20:00Z",
        "live_at": "2026-11-28T09:21:00Z", "failed_at": None, "lead_time_seconds": 21 * 60,
    }


def test_a_promoted_release_tells_when_its_approval_was_asked_and_given() -> None:
    kept = value_stream.recorded([("a" * 40, int(T0.timestamp()))], None, None, None) | value_stream.approval(
        T0 + timedelta(minutes=20), [T0 + timedelta(minutes=50), T0 + timedelta(minutes=40)])
    got = value_stream.timeline(record(ReleaseStatus.LIVE, kept, T0 + timedelta(minutes=52)))
    assert got["approval_requested_at"] == "2026-11-28T09:20:00Z"
    assert got["approved_at"] == "2026-11-28T09:50:00Z"  # the last approval it needed
    assert value_stream.approval(T0, []) == {"approval_requested_at": "2026-11-28T09:00:00Z", "approved_at": None}


def test_a_failed_release_has_no_lead_time_and_an_old_record_reads_as_empty() -> None:
    kept = value_stream.recorded([("a" * 40, int(T0.timestamp()))], None, None, None)
    failed = value_stream.timeline(record(ReleaseStatus.FAILED, kept, T0 + timedelta(minutes=30)))
    assert failed["failed_at"] == "2026-11-28T09:30:00Z" and failed["live_at"] is None
    assert failed["lead_time_seconds"] is None and failed["pushed_at"] is None
    empty = value_stream.timeline(record(ReleaseStatus.SUPERSEDED, {}, T0 + timedelta(minutes=21)))
    assert empty["commits"] == 0 and empty["lead_time_seconds"] is None and empty["live_at"] is not None


def test_a_release_keeps_at_most_the_newest_hundred_commits() -> None:
    many = [(f"{i:040x}", int(T0.timestamp()) + i) for i in range(250, 0, -1)]
    kept = value_stream.recorded(many, None, None, None)
    assert len(kept["commits"]) == value_stream.MAX_COMMITS and kept["commits"][0][0] == f"{250:040x}"


def test_each_deploy_records_the_commits_it_brings_over_the_live_release(world: World) -> None:
    first = world.push(static_site("v1"))
    world.push(static_site("v2"))  # pushed, not deployed
    third = world.push(static_site("v3"))
    one = world.deploy(first)
    three = world.deploy(third)
    again = world.deploy(third)  # nothing new
    releases = {r.id: r for r in world.store.list_releases("shop")}
    assert [c[0] for c in releases[one].timeline["commits"]] == [first]
    assert len(releases[three].timeline["commits"]) == 2 and releases[three].timeline["commits"][-1][0] != first
    assert releases[again].timeline["commits"] == []
    moments = value_stream.timeline(releases[three])
    assert moments["built_at"] and moments["build_started_at"] <= moments["built_at"] <= moments["live_at"]
    assert moments["pushed_at"] is None  # asked by hand, not queued by a push
    assert moments["lead_time_seconds"] is not None and moments["lead_time_seconds"] >= 0
