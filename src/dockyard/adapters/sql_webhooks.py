"""Outgoing webhooks and their deliveries in SQL (a mixin of SqlStore).

A delivery is claimed by moving its next try forward (a lease) in an update that holds only
while the row is still as it was read: two senders never take the same delivery, and one that
stopped in the middle of an attempt leaves it to be tried again once the lease ends."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from dockyard.adapters import sql_tables as t
from dockyard.domain.errors import NotFound
from dockyard.domain.webhooks import DELIVERED, FAILED, PENDING, Delivery, Webhook

CLAIM_TRIES = 5


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _webhook(row: Any) -> Webhook:
    return Webhook(id=row.id, app=row.app, environment=row.environment, url=row.url,
                   events=tuple(json.loads(row.events or "[]")), created_at=_utc(row.created_at))


def _delivery(row: Any) -> Delivery:
    return Delivery(id=row.id, webhook=row.webhook, event=row.event, payload=row.payload, status=row.status,
                    attempts=row.attempts, response=row.response, error=row.error,
                    created_at=_utc(row.created_at), next_at=_utc(row.next_at),
                    delivered_at=_utc(row.delivered_at))


class SqlWebhooks:
    engine: Engine

    # -- webhooks -------------------------------------------------------------------------
    def add_webhook(self, app: str, environment: str | None, url: str, events: Sequence[str],
                    seal: Callable[[int], bytes]) -> Webhook:
        """The webhook, its secret sealed by ``seal(id)`` in the transaction that inserts it."""
        with self.engine.begin() as c:
            key = c.execute(insert(t.webhooks).values(
                app=app, environment=environment, url=url, secret=b"", events=json.dumps(list(events)),
                created_at=datetime.now(UTC))).inserted_primary_key
            assert key is not None
            webhook_id = int(key[0])
            c.execute(update(t.webhooks).where(t.webhooks.c.id == webhook_id).values(secret=seal(webhook_id)))
        return self.get_webhook(app, webhook_id)

    def webhooks(self, app: str) -> list[Webhook]:
        w = t.webhooks.c
        with self.engine.connect() as c:
            return [_webhook(r) for r in c.execute(select(t.webhooks).where(w.app == app).order_by(w.id))]

    def get_webhook(self, app: str, webhook_id: int) -> Webhook:
        w = t.webhooks.c
        with self.engine.connect() as c:
            row = c.execute(select(t.webhooks).where(w.app == app, w.id == webhook_id)).first()
        if row is None:
            raise NotFound(f"{app} has no webhook {webhook_id}", f"list them with: dockyard webhooks list {app}")
        return _webhook(row)

    def sealed_webhook_secret(self, webhook_id: int) -> tuple[Webhook, bytes] | None:
        with self.engine.connect() as c:
            row = c.execute(select(t.webhooks).where(t.webhooks.c.id == webhook_id)).first()
        return None if row is None else (_webhook(row), bytes(row.secret))

    def reseal_webhooks(self, reseal: Callable[[Webhook, bytes], bytes]) -> int:
        count = 0
        with self.engine.begin() as c:
            for row in list(c.execute(select(t.webhooks))):
                c.execute(update(t.webhooks).where(t.webhooks.c.id == row.id)
                          .values(secret=reseal(_webhook(row), bytes(row.secret))))
                count += 1
        return count

    def remove_webhook(self, app: str, webhook_id: int) -> None:
        w = t.webhooks.c
        with self.engine.begin() as c:
            c.execute(delete(t.webhook_deliveries).where(
                t.webhook_deliveries.c.webhook.in_(select(w.id).where(w.app == app, w.id == webhook_id))))
            if c.execute(delete(t.webhooks).where(w.app == app, w.id == webhook_id)).rowcount == 0:
                raise NotFound(f"{app} has no webhook {webhook_id}", f"list them with: dockyard webhooks list {app}")

    def _forget_webhooks(self, c: Connection, app: str, environment: str | None = None) -> None:
        """Within ``c``'s transaction: the app's webhooks (those of ``environment`` only, when
        given) and their deliveries; a new app or environment of the same name starts without."""
        w = t.webhooks.c
        where = [w.app == app] + ([w.environment == environment] if environment is not None else [])
        c.execute(delete(t.webhook_deliveries).where(t.webhook_deliveries.c.webhook.in_(select(w.id).where(*where))))
        c.execute(delete(t.webhooks).where(*where))

    # -- deliveries -----------------------------------------------------------------------
    def add_deliveries(self, deliveries: Sequence[tuple[int, str, str]], next_at: datetime) -> list[Delivery]:
        if not deliveries:
            return []
        ids = []
        with self.engine.begin() as c:
            for webhook_id, event, payload in deliveries:
                key = c.execute(insert(t.webhook_deliveries).values(
                    webhook=webhook_id, event=event, payload=payload, status=PENDING, attempts=0,
                    created_at=datetime.now(UTC), next_at=next_at)).inserted_primary_key
                assert key is not None
                ids.append(int(key[0]))
            rows = c.execute(select(t.webhook_deliveries).where(t.webhook_deliveries.c.id.in_(ids))
                             .order_by(t.webhook_deliveries.c.id))
            return [_delivery(r) for r in rows]

    def deliveries(self, app: str, webhook_id: int | None = None, limit: int = 50) -> list[Delivery]:
        d, w = t.webhook_deliveries.c, t.webhooks.c
        mine = select(w.id).where(w.app == app)
        if webhook_id is not None:
            mine = mine.where(w.id == webhook_id)
        with self.engine.connect() as c:
            rows = c.execute(select(t.webhook_deliveries).where(d.webhook.in_(mine)).order_by(d.id.desc()).limit(limit))
            return [_delivery(r) for r in rows]

    def claim_delivery(self, now: datetime, lease_until: datetime) -> Delivery | None:
        d = t.webhook_deliveries.c
        due = (select(t.webhook_deliveries).where(d.status == PENDING, d.next_at <= now)
               .order_by(d.next_at, d.id).limit(1))
        for _ in range(CLAIM_TRIES):
            with self.engine.begin() as c:
                row = c.execute(due).first()
                if row is None:
                    return None
                taken = c.execute(update(t.webhook_deliveries).where(
                    d.id == row.id, d.status == PENDING, d.next_at == row.next_at).values(next_at=lease_until))
                if taken.rowcount == 1:
                    return _delivery(row)
        return None  # others kept taking them: they are being sent

    def next_delivery_at(self) -> datetime | None:
        d = t.webhook_deliveries.c
        with self.engine.connect() as c:
            return _utc(c.execute(select(func.min(d.next_at)).where(d.status == PENDING)).scalar())

    def record_attempt(self, delivery_id: int, status: str, response: int | None, error: str | None,
                       next_at: datetime | None) -> Delivery | None:
        d = t.webhook_deliveries.c
        values: dict[str, Any] = {"status": status, "attempts": d.attempts + 1, "response": response,
                                  "error": error, "next_at": next_at if status == PENDING else None}
        if status == DELIVERED:
            values["delivered_at"] = datetime.now(UTC)
        with self.engine.begin() as c:
            c.execute(update(t.webhook_deliveries).where(d.id == delivery_id).values(**values))
            row = c.execute(select(t.webhook_deliveries).where(d.id == delivery_id)).first()
        return None if row is None else _delivery(row)

    def prune_deliveries(self, before: datetime) -> int:
        d = t.webhook_deliveries.c
        with self.engine.begin() as c:
            return int(c.execute(delete(t.webhook_deliveries).where(
                d.status.in_((DELIVERED, FAILED)), d.created_at < before)).rowcount)
