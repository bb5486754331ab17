"""The audit log as a hash chain: each entry's hash covers its fields and the hash of the entry
before it (the first one's: GENESIS). Changing an entry breaks its own hash; removing or moving
one breaks the link of the entry that follows. Pure: no I/O.

What a chain alone cannot tell is that its newest entries were cut off: compare the head (the
newest hash, `dockyard audit --verify` prints it) with one noted elsewhere."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64  # the prev_hash of the first entry

# the columns' sizes: longer values are cut before they are hashed, so the row keeps what was hashed
MAX_ACTOR = MAX_SOURCE = 128
MAX_ACTION = MAX_APP = MAX_ENVIRONMENT = 64


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str  # ISO 8601, UTC, exactly as hashed
    actor: str  # who: a user, a token, who pushed, or "dockyard"
    source: str  # from where: an address, "git push", "dockyard"
    action: str  # what: the event's kind (token.created, deploy.queued, access.denied...)
    app: str | None
    environment: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)  # names, never secret values
    prev_hash: str = GENESIS
    hash: str = ""


def canonical_detail(detail: Mapping[str, object]) -> dict[str, Any]:
    """``detail`` as it reads back from JSON (tuples become lists, other objects their text), so
    that what is hashed is what is stored."""
    normal: dict[str, Any] = json.loads(json.dumps(dict(detail), default=str))
    return normal


def entry_hash(prev_hash: str, at: str, actor: str, source: str, action: str, app: str | None,
               environment: str | None, detail: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the entry's fields and the previous entry's hash, as canonical JSON
    (sorted keys, no whitespace)."""
    fields = {"prev_hash": prev_hash, "at": at, "actor": actor, "source": source, "action": action, "app": app,
              "environment": environment, "detail": detail}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_of(entry: AuditEntry) -> str:
    """The hash ``entry``'s fields call for."""
    return entry_hash(entry.prev_hash, entry.at, entry.actor, entry.source, entry.action, entry.app,
                      entry.environment, entry.detail)


def first_broken(entries: Iterable[AuditEntry]) -> tuple[int, str] | None:
    """The first entry (oldest first) where the chain breaks, and why; None when it holds.

    An entry whose fields do not match its hash was changed. One whose ``prev_hash`` is not the
    hash of the entry before it follows a removed, moved or rewritten entry."""
    prev: AuditEntry | None = None
    for entry in entries:
        if prev is not None and entry.id <= prev.id:
            return entry.id, f"its id comes after entry {prev.id}'s: entries were moved"
        if hash_of(entry) != entry.hash:
            return entry.id, "its fields do not match its hash: the entry was changed"
        if prev is None and entry.prev_hash != GENESIS:
            return entry.id, "the first entry does not start the chain: entries before it were removed"
        if prev is not None and entry.prev_hash != prev.hash:
            return entry.id, (f"its link does not match the hash of entry {prev.id} before it: an entry between "
                              "them was removed, or that one was rewritten")
        prev = entry
    return None
