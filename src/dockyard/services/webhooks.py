"""Outgoing webhooks: each app's (per environment, or all), their signing secrets sealed under the
secrets key, and their deliveries.

``on_event`` listens to the platform's events (services/events.py): a release that succeeded,
failed or was rolled back, a rollback that failed, an approval needed. It only stores a pending
delivery per webhook that wants the event (its JSON body as it will be signed and sent) and wakes
the senders: a slow or dead receiver never holds up the job that published it. Sender threads
POST due deliveries (``DOCKYARD_WEBHOOK_*`` settings), a 2xx answer delivers one, anything else is
tried again later (domain/webhooks.py ``Backoff``) until the last attempt fails it. Deliveries
left pending when the server stops are sent after its next start."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from dockyard.domain import names
from dockyard.domain import webhooks as wh
from dockyard.domain.configuration import SecretUnreadable
from dockyard.domain.errors import Conflict, DockyardError
from dockyard.domain.webhooks import Backoff, Delivery, Reply, Unreachable, Webhook
from dockyard.ports import SecretCipher, SecretKeys, WebhookStore, WebhookTransport
from dockyard.services.events import Event

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
LEASE_MARGIN = 30.0  # seconds past the timeout before a delivery claimed by a sender that stopped is tried again
PRUNE_EVERY = 3600.0  # seconds between two prunings of old deliveries


def utc_now() -> datetime:
    return datetime.now(UTC)


class Webhooks:
    def __init__(self, store: WebhookStore, keys: SecretKeys, transport: WebhookTransport, *,
                 backoff: Backoff | None = None, api_url: str = "", timeout: float = 5.0, senders: int = 2,
                 keep_days: float = 30.0, clock: Clock = utc_now) -> None:
        self.store = store
        self.keys = keys  # the secrets key (the one Configuration rotates)
        self.transport = transport
        self.backoff = backoff or Backoff()
        self.api_url = api_url.rstrip("/")  # job log links in payloads
        self.timeout = timeout
        self.senders = senders
        self.keep = timedelta(days=keep_days)  # finished deliveries older than this are forgotten
        self.clock = clock
        self._kick = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pruned_at = 0.0

    # -- configuring ----------------------------------------------------------------------
    def add(self, app: str, url: str, environment: str | None = None, events: Sequence[str] = (),
            secret: str | None = None) -> tuple[Webhook, str]:
        """A webhook of ``app`` (of one environment, or of all), sent ``events`` (none: every
        event), signed with ``secret`` (none: one dockyard makes). Returns it and its secret,
        which is never shown again."""
        app = self._app(app)
        if environment is not None:
            environment = names.environment_name(environment)
            self.store.get_environment(app, environment)  # NotFound
        url, subscribed = wh.url(url), wh.event_names(events)
        secret = wh.secret(secret) if secret is not None else secrets.token_urlsafe(32)
        existing = self.store.webhooks(app)
        if len(existing) >= wh.MAX_WEBHOOKS:
            raise Conflict(f"{app} has {len(existing)} webhooks, the most an app may have",
                           f"remove one first: dockyard webhooks remove {app} ID")
        for other in existing:
            if other.url == url and other.environment == environment:
                raise Conflict(f"{app} has a webhook to {url} for {environment or 'every environment'} already "
                               f"(webhook {other.id})", f"remove it first: dockyard webhooks remove {app} {other.id}")
        # under the current key, and the one a rotation under way is about to replace it with
        ciphers = [c for c in (self.keys.current(), self.keys.staged()) if c is not None]

        def seal(webhook_id: int) -> bytes:
            data = wh.associated_data(app, webhook_id)
            return wh.pack({c.key_id: c.seal(secret.encode(), data) for c in ciphers})

        return self.store.add_webhook(app, environment, url, subscribed, seal), secret

    def of(self, app: str) -> list[Webhook]:
        """The app's webhooks, oldest first; never their secrets."""
        return self.store.webhooks(self._app(app))

    def remove(self, app: str, webhook_id: int) -> Webhook:
        """The webhook and its deliveries: those pending are not sent."""
        hook = self.store.get_webhook(self._app(app), webhook_id)
        self.store.remove_webhook(hook.app, hook.id)
        return hook

    def deliveries(self, app: str, webhook_id: int | None = None, limit: int = 50) -> list[Delivery]:
        """The app's deliveries (of one webhook), newest first."""
        app = self._app(app)
        if webhook_id is not None:
            self.store.get_webhook(app, webhook_id)  # NotFound
        return self.store.deliveries(app, webhook_id, max(1, min(limit, 500)))

    def ping(self, app: str, webhook_id: int) -> Delivery:
        """A ``ping`` sent now, in this call (its retries, if it fails, by the senders): the
        delivery after its first attempt."""
        hook = self.store.get_webhook(self._app(app), webhook_id)
        now = self.clock()
        content = wh.body(wh.payload(wh.PING, hook.app, hook.environment, now, hook.id))
        [delivery] = self.store.add_deliveries([(hook.id, wh.PING, content)], now + self._lease())
        return self.attempt(delivery)

    def _app(self, app: str) -> str:
        return self.store.get_app(names.app_name(app)).name

    # -- events ---------------------------------------------------------------------------
    def on_event(self, event: Event) -> None:
        """A pending delivery for each of the app's webhooks that wants the event; the senders woken."""
        name = wh.FROM_BUS.get(event.kind)
        if name is None or event.app is None:
            return
        now = self.clock()
        job = event.detail.get("job")
        log_url = f"{self.api_url}/api/v1/jobs/{job}/logs" if self.api_url and isinstance(job, int) else None
        rows = [(hook.id, name, wh.body(wh.payload(name, event.app, event.environment, now, hook.id, event.actor,
                                                   event.detail, log_url)))
                for hook in self.store.webhooks(event.app) if hook.wants(name, event.environment)]
        if rows:
            self.store.add_deliveries(rows, now)
            self._kick.set()

    # -- sending --------------------------------------------------------------------------
    def attempt(self, delivery: Delivery) -> Delivery:
        """POST the delivery once and record how it went: delivered, tried again later, or failed."""
        found = self.store.sealed_webhook_secret(delivery.webhook)
        if found is None:  # removed meanwhile
            return delivery
        hook, sealed = found
        attempts = delivery.attempts + 1
        try:
            secret = self._open(hook, sealed)
        except DockyardError as exc:  # another key: trying again would not help
            return self._record(delivery, wh.FAILED, None, exc.message, None)
        content = delivery.payload.encode()
        reply: Reply | None = None
        try:
            reply = self.transport.post(hook.url, content, wh.headers(secret, content, delivery.event, delivery.id,
                                                                      hook.id), self.timeout)
            error = None if reply.ok else wh.failure(reply)
        except Unreachable as exc:
            error = str(exc)
        status, delay = wh.outcome(attempts, reply, self.backoff)
        next_at = self.clock() + timedelta(seconds=delay) if delay is not None else None
        if status != wh.DELIVERED:
            log.info("webhook %s: delivery %s (%s) attempt %s failed: %s%s", hook.id, delivery.id, delivery.event,
                     attempts, error, f"; again in {delay:g}s" if delay is not None else "; no attempt left")
        return self._record(delivery, status, reply.status if reply else None, error, next_at)

    def _record(self, delivery: Delivery, status: str, response: int | None, error: str | None,
                next_at: datetime | None) -> Delivery:
        return self.store.record_attempt(delivery.id, status, response, error, next_at) or delivery

    def send_due(self) -> int:
        """Every delivery due now, one after the other; how many were attempted."""
        count = 0
        while not self._stop.is_set():
            now = self.clock()
            delivery = self.store.claim_delivery(now, now + self._lease())
            if delivery is None:
                return count
            self.attempt(delivery)
            count += 1
        return count

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.timeout + LEASE_MARGIN)

    def start(self) -> None:
        """The sender threads; deliveries left pending by the last run are sent first."""
        self._stop.clear()
        self._kick.set()
        for i in range(self.senders):
            thread = threading.Thread(target=self._loop, name=f"webhook-sender-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop sending; an attempt under way is given ``timeout`` seconds (else it is tried again
        after the next start)."""
        self._stop.set()
        self._kick.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._kick.clear()
                self.send_due()
                self._prune()
                due = self.store.next_delivery_at()
                wait = 60.0 if due is None else (due - self.clock()).total_seconds()
                self._kick.wait(min(60.0, max(0.01, wait)))
            except Exception:  # the store failed (locked, disk full): keep the sender alive
                log.exception("webhook sender")
                self._stop.wait(1.0)

    def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        if gone := self.store.prune_deliveries(self.clock() - self.keep):
            log.info("forgot %d webhook deliveries older than %s days", gone, self.keep.days)

    # -- the signing secrets, under the secrets key ---------------------------------------------
    def _open(self, hook: Webhook, sealed: bytes) -> bytes:
        current = self.keys.current()
        found = wh.unpack(sealed).get(current.key_id)
        if found is None:
            raise SecretUnreadable(
                f"webhook {hook.id}'s secret was sealed with another key than the key file's ({current.key_id})",
                "restore that key file (DOCKYARD_SECRETS_KEY_FILE), or remove the webhook and add it again")
        return current.open(found, wh.associated_data(hook.app, hook.id))

    def reseal(self, old: SecretCipher, new: SecretCipher) -> int:
        """While the secrets key rotates, before the new key replaces the old one: each secret
        sealed under the new key too (so it opens whichever key the key file holds if the rotation
        stops half-way); sealings under other keys are dropped."""

        def both(hook: Webhook, sealed: bytes) -> bytes:
            data = wh.associated_data(hook.app, hook.id)
            found = wh.unpack(sealed)
            if old.key_id not in found:
                log.error("webhook %s of %s: its secret is not sealed under the current key; left as it is",
                          hook.id, hook.app)
                return sealed
            plain = old.open(found[old.key_id], data)
            return wh.pack({old.key_id: found[old.key_id], new.key_id: new.seal(plain, data)})

        return self.store.reseal_webhooks(both)
