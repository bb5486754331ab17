"""An app's outgoing webhooks: add, list, remove, ping; their deliveries. Admins only (a URL can
be a credential, as a chat service's incoming-webhook URL is)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.domain import webhooks as wh
from dockyard.domain.webhooks import Delivery, Webhook
from dockyard.entrypoints.deps import AppManager, Origin, PlatformDep
from dockyard.services.events import Event

router = APIRouter(prefix="/api/v1/apps/{name}/webhooks", tags=["webhooks"])


class WebhookIn(BaseModel):
    url: str = Field(description="where deliveries are POSTed (http or https, no user or password)",
                     examples=["https://ci.example.com/hooks/dockyard"])
    environment: str | None = Field(None, description="only this environment's events; none: every environment's")
    events: list[str] = Field(default_factory=list, description=f"some of: {', '.join(wh.EVENTS)}; none: every event")
    secret: str | None = Field(None, description=f"the signing secret ({wh.MIN_SECRET_CHARS} to {wh.MAX_SECRET_CHARS} "
                                                 "characters); none: dockyard makes one, shown once")


class WebhookOut(BaseModel):
    id: int
    url: str
    environment: str | None = Field(description="null: every environment")
    events: list[str] = Field(description="empty: every event")
    created_at: datetime | None


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="the signing secret: shown this once, never again")


class DeliveryOut(BaseModel):
    id: int
    webhook: int
    event: str
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    response: int | None = Field(description="the last answer's HTTP status")
    error: str | None = Field(description="why the last attempt failed")
    created_at: datetime | None
    next_at: datetime | None = Field(description="pending: when it is tried (again)")
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(description="the JSON body, as signed and sent")


def webhook_out(hook: Webhook) -> WebhookOut:
    return WebhookOut(id=hook.id, url=hook.url, environment=hook.environment, events=list(hook.events),
                      created_at=hook.created_at)


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(id=d.id, webhook=d.webhook, event=d.event, status=d.status, attempts=d.attempts,
                       response=d.response, error=d.error, created_at=d.created_at, next_at=d.next_at,
                       delivered_at=d.delivered_at, payload=json.loads(d.payload))


@router.get("")
def list_webhooks(name: str, p: PlatformDep, _: AppManager) -> list[WebhookOut]:
    """The app's webhooks, oldest first; never their secrets."""
    return [webhook_out(h) for h in p.webhooks.of(name)]


@router.post("", status_code=201)
def add_webhook(name: str, body: WebhookIn, p: PlatformDep, who: AppManager, source: Origin) -> WebhookCreatedOut:
    """Add a webhook: each event it subscribes to is POSTed to its URL as JSON, signed with
    `X-Dockyard-Signature: sha256=<HMAC-SHA256 of the body>`. The answer holds the secret: the
    only time it is shown."""
    hook, secret = p.webhooks.add(name, body.url, body.environment, body.events, body.secret)
    p.events.publish(Event("webhook.added", who.name, source, hook.app, hook.environment,
                           {"webhook": hook.id, "events": list(hook.events)}))
    return WebhookCreatedOut(**webhook_out(hook).model_dump(), secret=secret)


@router.get("/deliveries")
def list_deliveries(name: str, p: PlatformDep, _: AppManager, webhook: int | None = None,
                    limit: int = 50) -> list[DeliveryOut]:
    """The app's deliveries (of one webhook), newest first: status, attempts, the last answer."""
    return [delivery_out(d) for d in p.webhooks.deliveries(name, webhook, limit)]


@router.delete("/{webhook_id}", status_code=204)
def remove_webhook(name: str, webhook_id: int, p: PlatformDep, who: AppManager, source: Origin) -> None:
    """Remove a webhook and its deliveries (pending ones are not sent)."""
    hook = p.webhooks.remove(name, webhook_id)
    p.events.publish(Event("webhook.removed", who.name, source, hook.app, hook.environment, {"webhook": hook.id}))


@router.post("/{webhook_id}/ping")
def ping_webhook(name: str, webhook_id: int, p: PlatformDep, _: AppManager) -> DeliveryOut:
    """Send a `ping` event now; the answer is the delivery after its first attempt (retried
    later, like any other, if it failed)."""
    return delivery_out(p.webhooks.ping(name, webhook_id))
