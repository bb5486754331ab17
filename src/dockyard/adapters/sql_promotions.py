"""Promotions and their approvals in SQL (a mixin of SqlStore): the candidates of a stage graph
(domain/promotion.py), one per upstream release and environment."""

from __future__ import annotations

import datetime
import json
from datetime import UTC
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from dockyard.adapters import sql_tables as t
from dockyard.domain.errors import Conflict, NotFound
from dockyard.domain.promotion import Approval, Gate, Promotion


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _gate(text: str) -> Gate:
    d = json.loads(text)
    return Gate(d["source"], datetime.timedelta(seconds=d.get("soak", 0)), int(d.get("approvals", 0)),
                tuple(d.get("approvers", ())), bool(d.get("self_approval", False)), str(d.get("smoke", "")))


def _promotion(row: Any) -> Promotion:
    return Promotion(id=row.id, app=row.app, environment=row.environment, source_release=row.source_release,
                     source_environment=row.source_environment, commit=row.commit, gate=_gate(row.gate),
                     pusher=row.pusher, status=row.status, reason=row.reason or "", release=row.release,
                     created_at=_utc(row.created_at), decided_at=_utc(row.decided_at))


class SqlPromotions:
    engine: Engine

    def create_promotion(self, app: str, environment: str, source_release: int, source_environment: str,
                         commit: str, gate: Gate, pusher: str) -> Promotion:
        """A new candidate (awaiting); the one of this release and environment when it exists."""
        body = {"source": gate.source, "soak": gate.soak.total_seconds(), "approvals": gate.approvals,
                "approvers": list(gate.approvers), "self_approval": gate.self_approval, "smoke": gate.smoke}
        try:
            with self.engine.begin() as c:
                found = c.execute(insert(t.promotions).values(
                    app=app, environment=environment, source_release=source_release,
                    source_environment=source_environment, commit=commit, gate=json.dumps(body), pusher=pusher,
                    status="awaiting", created_at=datetime.datetime.now(UTC)))
                key = found.inserted_primary_key
                new_id = int(key[0]) if key is not None else 0
        except IntegrityError:
            return self.promotion_of(environment, source_release)
        return self.get_promotion(new_id)

    def get_promotion(self, promotion_id: int) -> Promotion:
        with self.engine.connect() as c:
            row = c.execute(select(t.promotions).where(t.promotions.c.id == promotion_id)).first()
        if row is None:
            raise NotFound(f"no promotion {promotion_id}")
        return _promotion(row)

    def promotion_of(self, environment: str, source_release: int) -> Promotion:
        p = t.promotions.c
        with self.engine.connect() as c:
            row = c.execute(select(t.promotions).where(p.environment == environment,
                                                       p.source_release == source_release)).first()
        if row is None:
            raise NotFound(f"release {source_release} is no candidate for {environment}")
        return _promotion(row)

    def promotions(self, app: str | None = None, environment: str | None = None, status: str | None = None,
                   limit: int = 100) -> list[Promotion]:
        """Newest first."""
        p = t.promotions.c
        query = select(t.promotions).order_by(p.id.desc()).limit(limit)
        if app is not None:
            query = query.where(p.app == app)
        if environment is not None:
            query = query.where(p.environment == environment)
        if status is not None:
            query = query.where(p.status == status)
        with self.engine.connect() as c:
            return [_promotion(r) for r in c.execute(query)]

    def set_promotion(self, promotion_id: int, status: str, reason: str = "", release: int | None = None,
                      expected: str | None = None) -> bool:
        """Its new state; with ``expected``, only if it is in that state still (False otherwise)."""
        p = t.promotions.c
        query = update(t.promotions).where(p.id == promotion_id)
        if expected is not None:
            query = query.where(p.status == expected)
        values: dict[str, Any] = {"status": status, "reason": reason, "decided_at": datetime.datetime.now(UTC)}
        if release is not None:
            values["release"] = release
        with self.engine.begin() as c:
            return bool(c.execute(query.values(**values)).rowcount)

    def add_approval(self, promotion_id: int, approval: Approval) -> None:
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.approvals).values(promotion=promotion_id, user=approval.user,
                                                     approve=approval.approve, comment=approval.comment,
                                                     at=approval.at or datetime.datetime.now(UTC)))
        except IntegrityError:
            raise Conflict(f"{approval.user} decided on this release already") from None

    def approvals_of(self, promotion_id: int) -> list[Approval]:
        a = t.approvals.c
        with self.engine.connect() as c:
            rows = c.execute(select(t.approvals).where(a.promotion == promotion_id).order_by(a.id))
            return [Approval(r.user, bool(r.approve), r.comment or "", _utc(r.at)) for r in rows]
