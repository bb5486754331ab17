"""What happened, told once to whoever listens: the audit log records every event, outgoing
webhooks send the ones they subscribe to (and, later, metrics read the same stream).

An event names its kind (``release.succeeded``, ``variable.set``, ``access.denied``...), who did
it (a user, a token, or who pushed), from where (an address, ``git push``, ``dockyard`` for the
server's own work), the app and environment, and a few details: names, never secret values. A
listener that fails is logged; it never fails the work that published the event."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
SERVER = "dockyard"  # the source of what the server does on its own (a job it runs)
GIT_PUSH = "git push"  # the source of what dockyard's git hooks ask, during a push
ACCESS_DENIED = "access.denied"  # a request refused (403): its action and why


@dataclass(frozen=True)
class Event:
    kind: str
    actor: str
    source: str = SERVER
    app: str | None = None
    environment: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)


Listener = Callable[[Event], None]


@dataclass
class Events:
    _listeners: list[Listener] = field(default_factory=list)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def subscribe(self, listener: Listener) -> None:
        with self._guard:
            self._listeners.append(listener)

    def publish(self, event: Event) -> None:
        with self._guard:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's failure is its own
                log.exception("event %s: listener %r failed", event.kind, listener)
