"""The audit log in SQL (a mixin of SqlStore): rows appended, never changed, each chained to the
one before by its hash (``domain/audit.py``).

The chain stays one line: appends of the server's threads take a lock and read the last hash in
the transaction that inserts, and the insert itself holds only while that hash is still the last
one (another process that appended in between makes it insert nothing, and it tries again)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Engine, func, insert, literal, select

from dockyard.adapters import sql_tables as t
from dockyard.domain.audit import GENESIS, AuditEntry, canonical_detail, entry_hash
from dockyard.domain.errors import Unavailable

BATCH = 500  # rows read at a time when the whole log is walked
ATTEMPTS = 50  # another process appending meanwhile makes an insert miss; it tries again, a moment later

_COLUMNS = ("at", "actor", "source", "action", "app", "environment", "detail", "prev_hash", "hash")


class SqlAuditLog:
    engine: Engine
    _audit_lock = threading.Lock()  # appends one at a time (one per process is enough: SQLite has one writer)

    def append_audit(self, at: str, actor: str, source: str, action: str, app: str | None,
                     environment: str | None, detail: Mapping[str, object]) -> AuditEntry:
        """The entry, chained to the newest one and stored."""
        fields = canonical_detail(detail)
        a = t.audit_log.c
        newest = select(a.hash).order_by(a.id.desc()).limit(1)
        for _ in range(ATTEMPTS):
            with self._audit_lock, self.engine.begin() as c:
                prev = c.execute(newest).scalar() or GENESIS
                digest = entry_hash(prev, at, actor, source, action, app, environment, fields)
                values = (at, actor, source, action, app, environment, _json(fields), prev, digest)
                still_newest = func.coalesce(newest.scalar_subquery(), GENESIS) == prev
                rows = select(*(literal(v) for v in values)).where(still_newest)
                if c.execute(insert(t.audit_log).from_select(list(_COLUMNS), rows)).rowcount == 1:
                    new_id = c.execute(select(a.id).where(a.hash == digest)).scalar_one()
                    return AuditEntry(new_id, at, actor, source, action, app, environment, fields, prev, digest)
            time.sleep(random.uniform(0, 0.005))
        raise Unavailable("the audit log could not be appended to: other writers kept appending",
                          "try again; only one dockyard server may use a database")

    def audit_entries(self, app: str | None = None, limit: int = 100, before: int | None = None) -> list[AuditEntry]:
        """Entries newest first (of one app, or all), with ids below ``before`` when given."""
        a = t.audit_log.c
        query = select(t.audit_log).order_by(a.id.desc()).limit(limit)
        if app is not None:
            query = query.where(a.app == app)
        if before is not None:
            query = query.where(a.id < before)
        with self.engine.connect() as c:
            return [_entry(r) for r in c.execute(query)]

    def all_audit_entries(self) -> Iterator[AuditEntry]:
        """Every entry, oldest first, read a batch at a time."""
        a = t.audit_log.c
        last = 0
        while True:
            with self.engine.connect() as c:
                rows = list(c.execute(select(t.audit_log).where(a.id > last).order_by(a.id).limit(BATCH)))
            yield from (_entry(r) for r in rows)
            if len(rows) < BATCH:
                return
            last = rows[-1].id


def _json(detail: Mapping[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _entry(row: Any) -> AuditEntry:
    try:
        detail = json.loads(row.detail)
    except ValueError:
        detail = None
    if not isinstance(detail, dict):  # not what was stored: kept as text, and its hash will not match
        detail = {"unreadable": str(row.detail)}
    return AuditEntry(row.id, row.at, row.actor, row.source, row.action, row.app, row.environment, detail,
                      row.prev_hash, row.hash)
