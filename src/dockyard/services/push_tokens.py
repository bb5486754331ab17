"""Hook tokens: one per ``git-receive-pack`` request, bound to that app and that pusher.

The git endpoint mints one for the push's hooks (``DOCKYARD_HOOK_TOKEN``) and revokes it when the
request ends; an unrevoked token (a client that went away) expires. Kept in memory only: a
restart ends every push in flight anyway.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.domain.access import HOOK, Principal

PREFIX = "dypush_"


@dataclass(frozen=True)
class _Grant:
    app: str
    pusher: str
    expires: float
    role: str = ""  # the pusher's


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PushTokens:
    def __init__(self, ttl: float = 1800.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._grants: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def mint(self, app: str, pusher: str, role: str = "") -> str:
        token = PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            for key in [k for k, g in self._grants.items() if g.expires <= now]:
                del self._grants[key]
            self._grants[_key(token)] = _Grant(app, pusher, now + self.ttl, role)
        return token

    def verify(self, token: str) -> Principal | None:
        """The push's principal (role hook, bound to its app), or None: unknown, revoked, expired."""
        with self._lock:
            grant = self._grants.get(_key(token))
        if grant is None or grant.expires <= self._clock():
            return None
        return Principal(name=grant.pusher, role=HOOK, app=grant.app, pusher_role=grant.role)

    def revoke(self, token: str) -> None:
        with self._lock:
            self._grants.pop(_key(token), None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._grants)
