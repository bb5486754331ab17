"""The moments of a release's value stream, kept with the release and read back from its records
alone: when its commits were made, pushed, built, released and live. The metrics that follow
(lead time for changes, deployment frequency, DORA) are computed from these.

A deploy records ``commits`` (what the release brings that the environment's live release did
not: id and commit time, newest first), ``pushed_at`` (when a push queued it; none for a deploy
asked by hand), ``build_started_at`` and ``built_at``. The release's own record adds when it
started (``created_at``) and when it went live or failed (``finished_at``). A promoted release
adds when its approval was requested (``approval_requested_at``: it became a candidate) and given
(``approved_at``: its last approval; none when nobody approved it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dockyard.domain.model import ReleaseStatus
from dockyard.domain.records import ReleaseRecord

MAX_COMMITS = 100  # a release bringing more keeps the newest ones


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z") if when else None


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def recorded(commits: Sequence[tuple[str, int]], pushed_at: datetime | None, build_started_at: datetime | None,
             built_at: datetime | None) -> dict[str, Any]:
    """What a deploy stores with its release (commit times are Unix seconds, as git gives them)."""
    return {
        "commits": [[sha, _iso(datetime.fromtimestamp(when, UTC))] for sha, when in commits[:MAX_COMMITS]],
        "pushed_at": _iso(pushed_at), "build_started_at": _iso(build_started_at), "built_at": _iso(built_at),
    }


def approval(requested_at: datetime | None, approved: Sequence[datetime]) -> dict[str, Any]:
    """What a promotion adds: when the candidate waited from, and the last approval it needed."""
    return {"approval_requested_at": _iso(requested_at), "approved_at": _iso(max(approved)) if approved else None}


def timeline(release: ReleaseRecord) -> dict[str, Any]:
    """The release's moments, in order, and its lead time (first commit → live) when it went live."""
    kept: Mapping[str, Any] = release.timeline
    times = [w for w in (_parse(c[1]) for c in kept.get("commits", []) if len(c) == 2) if w is not None]
    served = release.status in (ReleaseStatus.LIVE, ReleaseStatus.SUPERSEDED)
    live_at = release.finished_at if served else None
    first = min(times) if times else None
    return {
        "commits": len(times),
        "first_committed_at": _iso(first),
        "last_committed_at": _iso(max(times)) if times else None,
        "pushed_at": kept.get("pushed_at"),
        "build_started_at": kept.get("build_started_at"),
        "built_at": kept.get("built_at"),
        "approval_requested_at": kept.get("approval_requested_at"),
        "approved_at": kept.get("approved_at"),
        "release_started_at": _iso(release.created_at),
        "live_at": _iso(live_at),
        "failed_at": _iso(release.finished_at) if release.status == ReleaseStatus.FAILED else None,
        "lead_time_seconds": round((live_at - first).total_seconds()) if live_at and first else None,
    }
