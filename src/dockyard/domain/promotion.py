"""The stage graph's gates (pure): whether a candidate may enter its environment now, and who may
approve it.

A candidate is a release that went live in an upstream environment, waiting to be promoted, with
the same image digests, into an environment whose dockyard.yml says ``promotion: {from: ...}``.
It enters once:

- it has run upstream for the ``soak`` time, and still runs there;
- its ``smoke`` path, when the file names one, answered 2xx or 3xx through the proxy on the
  upstream environment's site (a live release there passed its health checks already);
- it has ``approvals`` approvals by distinct users among ``approvers`` (any approver or admin when
  none are listed); a protected environment needs at least one, whatever the file says, so a
  change to dockyard.yml alone never opens it;
- nobody rejected it.

The person who pushed may approve it only when ``self_approval`` is set."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.domain.access import ADMIN, APPROVER

AWAITING = "awaiting"  # a candidate's states
PROMOTING = "promoting"
PROMOTED = "promoted"
REJECTED = "rejected"
SUPERSEDED = "superseded"
FAILED = "failed"
DECIDED = (PROMOTED, REJECTED, SUPERSEDED, FAILED)


@dataclass(frozen=True)
class Gate:
    source: str
    soak: datetime.timedelta = datetime.timedelta(0)
    approvals: int = 0
    approvers: tuple[str, ...] = ()
    self_approval: bool = False
    smoke: str = ""  # a URL path upstream that must answer 2xx/3xx

    def needed(self, protected: bool) -> int:
        return max(self.approvals, 1 if protected else 0)


@dataclass(frozen=True)
class Approval:
    user: str
    approve: bool  # False: a rejection
    comment: str = ""
    at: datetime.datetime | None = None


@dataclass(frozen=True)
class Verdict:
    ready: bool
    waiting_for: str  # "" when ready; else what it waits for, as people read it


def verdict(gate: Gate, protected: bool, upstream_live_since: datetime.datetime | None, upstream_still_live: bool,
            approvals: Sequence[Approval], now: datetime.datetime, smoke: str | None = None) -> Verdict:
    """Whether a candidate may enter now, and what it waits for. ``smoke``: the last smoke check's
    outcome ("" passed, else why not; None: not checked yet), when the gate has one."""
    if not upstream_still_live or upstream_live_since is None:
        return Verdict(False, f"its release no longer runs in {gate.source}")
    waits = []
    left = gate.soak - (now - upstream_live_since)
    if left > datetime.timedelta(0):
        waits.append(f"{_span(left)} more in {gate.source}")
    if gate.smoke and smoke != "":
        waits.append(f"a smoke check of {gate.smoke} in {gate.source} ({smoke or 'not run yet'})")
    needed = gate.needed(protected)
    given = len({a.user for a in approvals if a.approve})
    if given < needed:
        who = ", ".join(gate.approvers) if gate.approvers else "an approver or admin"
        waits.append(f"approval by {who} ({given} of {needed})")
    return Verdict(not waits, "; ".join(waits))


def may_approve(gate: Gate, role: str, user: str, pusher: str, approvals: Sequence[Approval],
                protected: bool = False) -> str:
    """Why ``user`` (with ``role``) may not approve or reject this candidate; "" when they may. In
    a protected environment nobody approves their own push, whatever the file says."""
    if role not in (APPROVER, ADMIN):
        return f"{user} (role {role}) is no approver"
    if gate.approvers and user not in gate.approvers:
        return f"{user} is not among the approvers of this environment ({', '.join(gate.approvers)})"
    if user == pusher and (protected or not gate.self_approval):
        why = "the environment is protected" if protected else "dockyard.yml: promotion.self_approval is false"
        return f"{user} pushed this release and may not approve it ({why})"
    if any(a.user == user for a in approvals):
        return f"{user} decided on this release already"
    return ""


def _span(left: datetime.timedelta) -> str:
    seconds = int(left.total_seconds()) + (1 if left.microseconds else 0)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s" if rest >= 60 else f"{rest}s"


@dataclass(frozen=True)
class Promotion:
    """A candidate: the release ``source_release`` of ``source_environment``, waiting to enter
    ``environment`` with the same digests (``artifact``: services as the store keeps them)."""

    id: int
    app: str
    environment: str
    source_release: int
    source_environment: str
    commit: str
    gate: Gate
    pusher: str
    status: str = AWAITING
    reason: str = ""  # why it was rejected, superseded or failed
    release: int | None = None  # the release it became
    created_at: datetime.datetime | None = None
    decided_at: datetime.datetime | None = None
