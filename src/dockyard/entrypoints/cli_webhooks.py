"""`dockyard webhooks`: an app's outgoing webhooks and their deliveries."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from dockyard.entrypoints.cli_http import JsonOpt, call, fail, q, table

FROM_STDIN = "-"  # as --secret: read the secret from the standard input
EVENTS = "release.succeeded, release.failed, release.rolled_back, rollback.failed, approval.needed"

webhooks_cli = typer.Typer(
    help="Outgoing webhooks: dockyard POSTs a JSON event, signed with HMAC-SHA256 "
         "(X-Dockyard-Signature: sha256=HEX), when a release succeeds, fails or is rolled back, a rollback fails, "
         "or an approval is needed. Failed deliveries are tried again with growing delays; each is recorded. "
         "Admins only.",
    no_args_is_help=True,
)


def _row(hook: dict[str, Any]) -> dict[str, Any]:
    return dict(hook, environment=hook["environment"] or "(all)", events=",".join(hook["events"]) or "(all)",
                created_at=str(hook["created_at"])[:19])


@webhooks_cli.command("add")
def webhooks_add(
    app: str,
    url: Annotated[str, typer.Argument(help="where deliveries are POSTed (http:// or https://)")],
    env: Annotated[str | None, typer.Option("--env", "-e", help="only this environment's events (default: all)")] = None,
    event: Annotated[list[str] | None, typer.Option("--event", help=f"an event to send, repeatable: {EVENTS} "
                                                                    "(default: every event)")] = None,
    secret: Annotated[str | None, typer.Option(help="the signing secret (16 to 256 characters; '-' reads it from "
                                                    "stdin); default: dockyard makes one")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Add a webhook to APP: its events are POSTed to URL as signed JSON.

    The signing secret is printed this once: keep it where the receiver checks signatures
    (X-Dockyard-Signature: sha256=HMAC-SHA256 of the body, hex)."""
    if secret == FROM_STDIN:
        secret = sys.stdin.readline().rstrip("\n")
    hook = call("POST", f"/api/v1/apps/{q(app)}/webhooks",
                json={"url": url, "environment": env, "events": event or [], "secret": secret})
    if as_json:
        typer.echo(json.dumps(hook, indent=2))
        return
    events, env = ",".join(hook["events"]) or "every event", hook["environment"] or "every environment"
    typer.echo(f"added webhook {hook['id']} to {app} ({events}; {env}): {hook['url']}")
    if secret is None:
        typer.echo(f"signing secret (shown once): {hook['secret']}")
    else:
        typer.echo("signed with the secret given")
    typer.echo(f"try it: dockyard webhooks ping {app} {hook['id']}")


@webhooks_cli.command("list")
def webhooks_list(app: str, as_json: JsonOpt = False) -> None:
    """List APP's webhooks: id, URL, environment, events (never their secrets)."""
    hooks = call("GET", f"/api/v1/apps/{q(app)}/webhooks")
    if as_json:
        typer.echo(json.dumps(hooks, indent=2))
        return
    table([_row(h) for h in hooks], ["id", "url", "environment", "events", "created_at"])


@webhooks_cli.command("remove")
def webhooks_remove(app: str, webhook_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """Remove webhook ID of APP, with its deliveries (pending ones are not sent)."""
    call("DELETE", f"/api/v1/apps/{q(app)}/webhooks/{webhook_id}")
    typer.echo(f"removed webhook {webhook_id} of {app}")


def _delivery_row(d: dict[str, Any]) -> dict[str, Any]:
    what = {"delivered": f"HTTP {d['response']}", "pending": f"next at {str(d['next_at'])[:19]}"}.get(d["status"], "")
    return dict(d, created_at=str(d["created_at"])[:19], outcome=" ".join(filter(None, [what, d["error"] or ""])))


@webhooks_cli.command("deliveries")
def webhooks_deliveries(
    app: str,
    webhook: Annotated[int | None, typer.Option("--webhook", "-w", help="only this webhook's")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """APP's webhook deliveries, newest first, with their status and last answer.

    Status: pending (tried again at the time shown), delivered (a 2xx answer) or failed (no
    attempt left). --json shows each body as it was signed and sent."""
    params: dict[str, Any] = {"limit": limit}
    if webhook is not None:
        params["webhook"] = webhook
    rows = call("GET", f"/api/v1/apps/{q(app)}/webhooks/deliveries", params=params)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([_delivery_row(d) for d in rows], ["id", "webhook", "event", "status", "attempts", "created_at", "outcome"])


@webhooks_cli.command("ping")
def webhooks_ping(app: str, webhook_id: Annotated[int, typer.Argument(metavar="ID")], as_json: JsonOpt = False) -> None:
    """Send a `ping` event to webhook ID now, and say how the receiver answered."""
    d = call("POST", f"/api/v1/apps/{q(app)}/webhooks/{webhook_id}/ping")
    if as_json:
        typer.echo(json.dumps(d, indent=2))
        return
    if d["status"] == "delivered":
        typer.echo(f"delivered (delivery {d['id']}): HTTP {d['response']}")
        return
    later = f"; tried again at {str(d['next_at'])[:19]}" if d["status"] == "pending" else ""
    fail(f"ping not delivered (delivery {d['id']}): {d['error']}{later}",
         f"see: dockyard webhooks deliveries {app} --webhook {webhook_id}")
