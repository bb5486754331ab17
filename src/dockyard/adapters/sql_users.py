"""Users and their tokens in SQL (a mixin of SqlStore): a token belongs to a user, and the user's
role is what the token may do. Tokens are kept hashed; an installation always keeps an admin."""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from dockyard.adapters import sql_tables as t
from dockyard.domain.access import ADMIN
from dockyard.domain.errors import Conflict, NotFound
from dockyard.domain.model import Token, User


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


_ROLES_LOCK = threading.Lock()  # the last admin's check and the change it allows, one at a time


class SqlUsers:
    engine: Engine

    # -- tokens ---------------------------------------------------------------------------
    def token_count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(t.tokens)).scalar() or 0)

    def create_token(self, name: str, role: str = ADMIN, user: str | None = None) -> str:
        """A token for ``user`` (default: a user named as the token, created with ``role`` when new)."""
        token = "dy_" + secrets.token_urlsafe(32)
        holder = user or name
        with self.engine.begin() as c:
            found = c.execute(select(t.users.c.role).where(t.users.c.name == holder)).scalar()
            if found is None and user is not None:
                raise NotFound(f"no user named {user!r}", "list them with: dockyard users list")
            if found is None:
                c.execute(insert(t.users).values(name=holder, role=role, created_at=_now()))
            elif user is None and found != role:
                raise Conflict(f"user {holder!r} exists with role {found}",
                               f"give the token to that user (--user {holder}), or change the role: "
                               f"dockyard users set-role {holder} {role}")
            try:
                c.execute(insert(t.tokens).values(name=name, hash=hash_token(token), role=found or role,
                                                  user=holder, created_at=_now()))
            except IntegrityError:
                raise Conflict(f"a token named {name!r} exists", "pick another name or revoke it first") from None
        return token

    def verify_token(self, token: str) -> Token | None:
        k = t.tokens.c
        with self.engine.connect() as c:
            row = c.execute(select(k.name, k.user, func.coalesce(t.users.c.role, k.role).label("role"), k.last_used_at)
                            .select_from(t.tokens.outerjoin(t.users, t.users.c.name == k.user))
                            .where(k.hash == hash_token(token))).first()
        if row is None:
            return None
        used = _utc(row.last_used_at)
        if used is None or (_now() - used).total_seconds() > 60:  # a write per minute, not per request
            with self.engine.begin() as c:
                c.execute(update(t.tokens).where(k.name == row.name).values(last_used_at=_now()))
        return Token(str(row.name), str(row.role), user=str(row.user or row.name))

    def list_tokens(self) -> list[Token]:
        k = t.tokens.c
        with self.engine.connect() as c:
            rows = c.execute(select(k.name, k.user, func.coalesce(t.users.c.role, k.role).label("role"), k.created_at,
                                    k.last_used_at)
                             .select_from(t.tokens.outerjoin(t.users, t.users.c.name == k.user)).order_by(k.id))
            return [Token(r.name, r.role, _utc(r.created_at), _utc(r.last_used_at), str(r.user or r.name))
                    for r in rows]

    def revoke_token(self, name: str) -> None:
        with self.engine.begin() as c:
            if c.execute(delete(t.tokens).where(t.tokens.c.name == name)).rowcount == 0:
                raise NotFound(f"no token named {name!r}", "list them with: dockyard tokens list")

    # -- users ----------------------------------------------------------------------------
    def create_user(self, name: str, role: str) -> User:
        try:
            with self.engine.begin() as c:
                c.execute(insert(t.users).values(name=name, role=role, created_at=_now()))
        except IntegrityError:
            raise Conflict(f"a user named {name!r} exists", "pick another name") from None
        return self.get_user(name)

    def get_user(self, name: str) -> User:
        found = [u for u in self.list_users() if u.name == name]
        if not found:
            raise NotFound(f"no user named {name!r}", "list them with: dockyard users list")
        return found[0]

    def list_users(self) -> list[User]:
        u, k = t.users.c, t.tokens.c
        with self.engine.connect() as c:
            counts: dict[str, int] = {str(r[0]): int(r[1]) for r in c.execute(select(k.user, func.count()).group_by(k.user))}
            rows = c.execute(select(t.users).order_by(u.name))
            return [User(r.name, r.role, _utc(r.created_at), int(counts.get(r.name, 0))) for r in rows]

    def set_user_role(self, name: str, role: str) -> User:
        with _ROLES_LOCK, self.engine.begin() as c:
            current = self._role(c, name)
            if current == ADMIN and role != ADMIN and self._admins(c) <= 1:
                raise Conflict(f"{name} is the last admin", "make another user admin first")
            c.execute(update(t.users).where(t.users.c.name == name).values(role=role))
            c.execute(update(t.tokens).where(t.tokens.c.user == name).values(role=role))
        return self.get_user(name)

    def remove_user(self, name: str) -> None:
        """The user and every token of theirs."""
        with _ROLES_LOCK, self.engine.begin() as c:
            if self._role(c, name) == ADMIN and self._admins(c) <= 1:
                raise Conflict(f"{name} is the last admin", "make another user admin first")
            c.execute(delete(t.tokens).where(t.tokens.c.user == name))
            c.execute(delete(t.users).where(t.users.c.name == name))

    @staticmethod
    def _role(c: Any, name: str) -> str:
        role = c.execute(select(t.users.c.role).where(t.users.c.name == name)).scalar()
        if role is None:
            raise NotFound(f"no user named {name!r}", "list them with: dockyard users list")
        return str(role)

    @staticmethod
    def _admins(c: Any) -> int:
        return int(c.execute(select(func.count()).select_from(t.users).where(t.users.c.role == ADMIN)).scalar() or 0)
