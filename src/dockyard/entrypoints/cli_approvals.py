"""`dockyard approvals`, `dockyard approve`, `dockyard reject`: releases waiting to be promoted."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dockyard.entrypoints.cli_http import EnvOpt, JsonOpt, call, q, table

CommentOpt = Annotated[str, typer.Option("--comment", "-m", help="why (kept with the decision)")]


def approvals(app: Annotated[str | None, typer.Argument(help="only this app's")] = None,
              as_json: JsonOpt = False) -> None:
    """List the releases waiting to enter an environment, and what each waits for."""
    rows = call("GET", "/api/v1/approvals", params={"app": app} if app else None)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        typer.echo("nothing waits for approval")
        return
    table([dict(r, commit=r["commit"][:10], created_at=str(r["created_at"])[:19],
                waiting_for=r["waiting_for"] or "(promoting)") for r in rows],
          ["app", "release", "from", "environment", "commit", "pusher", "waiting_for", "created_at"])


def approve(app: str, release: Annotated[int, typer.Argument(help="the release's id (as it ran upstream)")],
            env: EnvOpt = "production", comment: CommentOpt = "") -> None:
    """Approve a release to enter ENV: it is promoted, with the same images, once every gate passes."""
    done = call("POST", f"/api/v1/apps/{q(app)}/environments/{q(env)}/candidates/{release}/approve",
                json={"comment": comment})
    typer.echo(f"release {release} approved for {env}: {done['status']}")


def reject(app: str, release: Annotated[int, typer.Argument(help="the release's id (as it ran upstream)")],
           env: EnvOpt = "production", comment: CommentOpt = "") -> None:
    """Reject a release for ENV: it will not enter it (a newer release may)."""
    call("POST", f"/api/v1/apps/{q(app)}/environments/{q(env)}/candidates/{release}/reject",
         json={"comment": comment})
    typer.echo(f"release {release} rejected for {env}")
