"""The audit log: every event (services/events.py) recorded as an entry saying who, when, what and
from where; read back newest first; the whole chain verified (``domain/audit.py``).

An event's details are names (a variable's, a secret's, a token's), never values: whoever
publishes keeps them so."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from dockyard.domain import names
from dockyard.domain.audit import (
    MAX_ACTION,
    MAX_ACTOR,
    MAX_APP,
    MAX_ENVIRONMENT,
    MAX_SOURCE,
    AuditEntry,
    first_broken,
)
from dockyard.ports import AuditLog
from dockyard.services.events import Event

MAX_LIMIT = 1000


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


class Audit:
    def __init__(self, log: AuditLog, clock: Callable[[], str] = utc_now) -> None:
        self.log = log
        self.clock = clock

    def record(self, event: Event) -> None:
        """The event as the log's newest entry (subscribed to the platform's events)."""
        self.log.append_audit(self.clock(), event.actor[:MAX_ACTOR], event.source[:MAX_SOURCE],
                                     event.kind[:MAX_ACTION], _cut(event.app, MAX_APP),
                                     _cut(event.environment, MAX_ENVIRONMENT), event.detail)

    def entries(self, app: str | None = None, limit: int = 100, before: int | None = None) -> list[AuditEntry]:
        """Newest first, of one app or of all; ``before``: entries older than that id (a page)."""
        return self.log.audit_entries(names.app_name(app) if app else None, max(1, min(limit, MAX_LIMIT)), before)

    def verify(self) -> dict[str, Any]:
        """Walk the chain oldest first: ``ok``, how many ``entries`` were checked (all of them when
        ok), the ``first_broken`` entry's id and the ``reason``; when ok, the ``head`` (the newest
        hash, to note elsewhere: a chain cannot tell that its newest entries were cut off)."""
        walked = _Counted(self.log.all_audit_entries())
        broken = first_broken(walked)
        if broken is None:
            return {"ok": True, "entries": walked.count, "first_broken": None, "reason": "", "head": walked.head}
        return {"ok": False, "entries": walked.count, "first_broken": broken[0], "reason": broken[1], "head": ""}


class _Counted:
    """Entries as they pass: how many, and the last one's hash."""

    def __init__(self, entries: Iterable[AuditEntry]) -> None:
        self.entries = entries
        self.count = 0
        self.head = ""

    def __iter__(self) -> Iterator[AuditEntry]:
        for entry in self.entries:
            self.count += 1
            self.head = entry.hash
            yield entry
