"""Outgoing webhooks, the pure part: the events a webhook subscribes to and the bus events they
come from, the payload, the signature (GitHub's scheme: ``X-Dockyard-Signature: sha256=<hex
HMAC-SHA256 of the exact body>``) and its check, when a failed delivery is tried again, and
which URLs and secrets are accepted.

A receiver checks a delivery with ``verify(secret, body, header)`` (the README shows the same in
five lines), and tells deliveries apart by ``X-Dockyard-Delivery``: a delivery may arrive twice
(dockyard stopped between the receiver's answer and its record of it)."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from dockyard.domain.errors import DockyardError, shown

RELEASE_SUCCEEDED = "release.succeeded"
RELEASE_FAILED = "release.failed"
RELEASE_ROLLED_BACK = "release.rolled_back"
ROLLBACK_FAILED = "rollback.failed"
APPROVAL_NEEDED = "approval.needed"
PING = "ping"  # sent on demand (``dockyard webhooks ping``), to every webhook whatever it subscribes to
EVENTS = (RELEASE_SUCCEEDED, RELEASE_FAILED, RELEASE_ROLLED_BACK, ROLLBACK_FAILED, APPROVAL_NEEDED)

FROM_BUS = {  # the bus's event (services/events.py) -> the webhook event it is sent as
    "deploy.succeeded": RELEASE_SUCCEEDED,
    "deploy.failed": RELEASE_FAILED,
    "promote.succeeded": RELEASE_SUCCEEDED,  # a promotion is a release of the environment it enters
    "promote.failed": RELEASE_FAILED,
    "rollback.succeeded": RELEASE_ROLLED_BACK,
    "rollback.failed": ROLLBACK_FAILED,
    "approval.needed": APPROVAL_NEEDED,
}

SIGNATURE_HEADER = "X-Dockyard-Signature"
EVENT_HEADER = "X-Dockyard-Event"
DELIVERY_HEADER = "X-Dockyard-Delivery"
WEBHOOK_HEADER = "X-Dockyard-Webhook"
USER_AGENT = "dockyard-webhooks"

MAX_URL_CHARS = 2048
MIN_SECRET_CHARS, MAX_SECRET_CHARS = 16, 256
MAX_WEBHOOKS = 20  # per app

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class Webhook:
    """A webhook as dockyard shows it: never its secret."""

    id: int
    app: str
    environment: str | None  # None: every environment of the app
    url: str
    events: tuple[str, ...]  # (): every event
    created_at: datetime | None = None

    def wants(self, event: str, environment: str | None) -> bool:
        """Whether an ``event`` of ``environment`` is sent to this webhook."""
        if self.environment is not None and environment != self.environment:
            return False
        return event == PING or not self.events or event in self.events


@dataclass(frozen=True)
class Delivery:
    """One event sent (or to send) to one webhook: the exact body, and its last attempt."""

    id: int
    webhook: int
    event: str
    payload: str  # the body, byte for byte as signed and sent
    status: str  # pending, delivered, failed
    attempts: int = 0
    response: int | None = None  # the last answer's HTTP status
    error: str | None = None  # why the last attempt failed
    created_at: datetime | None = None
    next_at: datetime | None = None  # pending: when it is tried (again)
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class Reply:
    """A receiver's answer: its status and the start of its body."""

    status: int
    body: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Unreachable(Exception):
    """The receiver could not be reached, or did not answer in time."""


# -- events and payloads --------------------------------------------------------------------------
def event_names(values: Iterable[str]) -> tuple[str, ...]:
    """The events a webhook subscribes to, each known, in the order of ``EVENTS``; () is every event."""
    wanted = set(values)
    unknown = sorted(wanted - set(EVENTS))
    if unknown:
        raise DockyardError(f"unknown webhook event {shown(unknown[0])}",
                            f"subscribe to some of: {', '.join(EVENTS)} (none: every event)")
    return tuple(e for e in EVENTS if e in wanted)


def payload(event: str, app: str, environment: str | None, at: datetime, webhook: int, actor: str | None = None,
            detail: Mapping[str, object] | None = None, log_url: str | None = None) -> dict[str, object]:
    """What a delivery says: every key always there (null when it does not apply). ``release`` is
    the release the job made; ``to_release`` the release a rollback returned to."""
    d = detail or {}
    return {
        "event": event,
        "app": app,
        "environment": environment,
        "actor": actor,
        "release": d.get("release"),
        "to_release": d.get("to"),
        "commit": d.get("commit"),
        "branch": d.get("branch"),
        "job": d.get("job"),
        "error": d.get("error"),
        "log_url": log_url,
        "webhook": webhook,
        "at": at.isoformat().replace("+00:00", "Z"),
    }


def body(content: Mapping[str, object]) -> str:
    """The payload as sent: compact JSON, keys in a stable order."""
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False)


# -- signature ------------------------------------------------------------------------------------
def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def signature(secret: str | bytes, content: bytes) -> str:
    """The ``X-Dockyard-Signature`` header's value: ``sha256=`` and the HMAC-SHA256 of the exact body."""
    return "sha256=" + hmac.new(_key(secret), content, hashlib.sha256).hexdigest()


def verify(secret: str | bytes, content: bytes, header: str | None) -> bool:
    """Whether ``header`` (``X-Dockyard-Signature``) signs ``content`` (the raw body, as received)
    with ``secret``; compared in constant time."""
    if not header:
        return False
    return hmac.compare_digest(signature(secret, content).encode(), header.strip().encode())


def headers(secret: str | bytes, content: bytes, event: str, delivery: int, webhook: int) -> dict[str, str]:
    """The headers of a delivery."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event,
        DELIVERY_HEADER: str(delivery),
        WEBHOOK_HEADER: str(webhook),
        SIGNATURE_HEADER: signature(secret, content),
    }


# -- retries --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backoff:
    """``first`` seconds before the second attempt, doubled each time up to ``cap``; ``attempts``
    in all."""

    first: float = 10.0
    cap: float = 3600.0
    attempts: int = 8

    def delay(self, attempts: int) -> float | None:
        """Seconds before the next attempt, once ``attempts`` failed; None when none is left."""
        if attempts >= self.attempts:
            return None
        return float(min(self.cap, self.first * 2 ** max(0, attempts - 1)))

    def schedule(self) -> list[float]:
        """The delays between the attempts, first to last."""
        return [d for n in range(1, self.attempts) if (d := self.delay(n)) is not None]


def outcome(attempts: int, reply: Reply | None, backoff: Backoff) -> tuple[str, float | None]:
    """After attempt number ``attempts`` (``reply`` None: no answer): the delivery's status, and
    in how many seconds it is tried again (pending only)."""
    if reply is not None and reply.ok:
        return DELIVERED, None
    delay = backoff.delay(attempts)
    return (FAILED, None) if delay is None else (PENDING, delay)


def failure(reply: Reply) -> str:
    """Why an answer is no delivery, as recorded."""
    excerpt = " ".join(reply.body.split())[:200]
    if 300 <= reply.status < 400:
        return f"HTTP {reply.status}: redirects are not followed (give the URL it redirects to)"
    return f"HTTP {reply.status}" + (f": {excerpt}" if excerpt else "")


# -- what is accepted -----------------------------------------------------------------------------
def url(value: str) -> str:
    """An http(s) URL with a host, without credentials or white space, of at most MAX_URL_CHARS."""
    hint = "give an http:// or https:// URL, e.g. https://ci.example.com/hooks/dockyard"
    if len(value) > MAX_URL_CHARS:
        raise DockyardError(f"the webhook URL is {len(value)} characters long, over {MAX_URL_CHARS}", hint)
    if not value or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise DockyardError(f"invalid webhook URL {shown(value)}: empty, or with white space or control characters",
                            hint)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port out of range)
    except ValueError as exc:
        raise DockyardError(f"invalid webhook URL {shown(value)}: {exc}", hint) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise DockyardError(f"invalid webhook URL {shown(value)}: only http and https are sent to", hint)
    if "@" in parts.netloc:
        raise DockyardError("a webhook URL may not hold a user name or password",
                            "the signature (X-Dockyard-Signature) authenticates dockyard to the receiver")
    if not parts.hostname:
        raise DockyardError(f"invalid webhook URL {shown(value)}: no host", hint)
    return value


def secret(value: str) -> str:
    """A signing secret given by the user: MIN_SECRET_CHARS to MAX_SECRET_CHARS printable characters."""
    if not MIN_SECRET_CHARS <= len(value) <= MAX_SECRET_CHARS or not value.isprintable():
        raise DockyardError(f"a webhook secret is {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} printable characters",
                            "leave it out: dockyard then makes one and shows it once")
    return value


def associated_data(app: str, webhook: int) -> bytes:
    """Binds a sealed secret to its webhook: moved to another row, it does not open."""
    return f"dockyard-webhook\0{app}\0{webhook}".encode()


# -- a secret sealed under several keys (one per key, while the secrets key rotates) ---------------
def pack(sealed: Mapping[str, bytes]) -> bytes:
    """key id -> ciphertext, as one column's bytes."""
    out = bytearray()
    for key_id, ciphertext in sealed.items():
        kid = key_id.encode()
        out += struct.pack(">B", len(kid)) + kid + struct.pack(">I", len(ciphertext)) + ciphertext
    return bytes(out)


def unpack(data: bytes) -> dict[str, bytes]:
    """The inverse of ``pack``; bytes cut short end it."""
    found: dict[str, bytes] = {}
    at = 0
    while at < len(data):
        size = data[at]
        key_id = data[at + 1:at + 1 + size].decode(errors="replace")
        at += 1 + size
        if at + 4 > len(data):
            break
        (length,) = struct.unpack(">I", data[at:at + 4])
        at += 4
        if at + length > len(data):
            break
        found[key_id] = data[at:at + length]
        at += length
    return found
