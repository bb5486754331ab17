"""`dockyard envs`: an app's environments (production, recette, dev...)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dockyard.entrypoints.cli_http import JsonOpt, call, q, table

envs_cli = typer.Typer(
    help="An app's environments: each has its own network, containers, volumes, routes, releases, variables "
         "and secrets. Every app has production (at APP.<base domain>); another environment ENV answers at "
         "ENV.APP.<base domain>.",
    no_args_is_help=True,
)


@envs_cli.command("list")
def envs_list(app: str, as_json: JsonOpt = False) -> None:
    """List APP's environments, production first: target, branch, where each answers."""
    rows = call("GET", f"/api/v1/apps/{q(app)}/environments")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([dict(r, branch=r["branch"] or "(on demand)", created_at=str(r["created_at"])[:19],
                protected="yes" if r.get("protected") else "") for r in rows],
          ["name", "target", "branch", "protected", "site", "created_at"])


BranchOpt = Annotated[str | None, typer.Option(
    "--branch", help="pushes to this branch deploy to the environment (default: none, deploy it with "
                     "dockyard deploy APP --env ENV --branch BRANCH)")]


@envs_cli.command("create")
def envs_create(app: str, name: str, branch: BranchOpt = None,
                target: Annotated[str, typer.Option(help="the Docker target it runs on ('local': this host)")] = "local",
                ) -> None:
    """Add environment NAME to APP; it runs nothing until its first deploy."""
    env = call("POST", f"/api/v1/apps/{q(app)}/environments", json={"name": name, "target": target, "branch": branch})
    typer.echo(f"created {app}'s environment {env['name']} on {env['target']}: it will answer at "
               f"{env['site']}" + (f", deployed by pushes to {env['branch']}" if env["branch"] else ""))


@envs_cli.command("set-branch")
def envs_set_branch(app: str, name: str,
                    branch: Annotated[str | None, typer.Argument(help="none: deployed on demand only")] = None) -> None:
    """Make pushes to BRANCH deploy to environment NAME (no BRANCH: stop deploying pushes there)."""
    env = call("PUT", f"/api/v1/apps/{q(app)}/environments/{q(name)}/branch", json={"branch": branch})
    typer.echo(f"{app}'s {env['name']} deploys " + (f"pushes to {env['branch']}" if env["branch"] else "on demand"))


@envs_cli.command("protect")
def envs_protect(app: str, name: str) -> None:
    """Protect an environment: only admins deploy, roll back, scale or configure it, and a
    developer's push does not deploy it (admin only)."""
    call("PUT", f"/api/v1/apps/{q(app)}/environments/{q(name)}/protection", json={"protected": True})
    typer.echo(f"{app}/{name} is protected")


@envs_cli.command("unprotect")
def envs_unprotect(app: str, name: str) -> None:
    """Let developers deploy, roll back, scale and configure the environment again (admin only)."""
    call("PUT", f"/api/v1/apps/{q(app)}/environments/{q(name)}/protection", json={"protected": False})
    typer.echo(f"{app}/{name} is no longer protected")


@envs_cli.command("remove")
def envs_remove(app: str, name: str, yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Stop environment NAME's containers and forget its releases, variables and secrets. Its
    volumes stay (dockyard volumes list APP --env NAME)."""
    if not yes and not typer.confirm(f"Remove {app}'s environment {name}, its containers, variables and secrets?"):
        raise typer.Exit(1)
    call("DELETE", f"/api/v1/apps/{q(app)}/environments/{q(name)}")
    typer.echo(f"removed {app}'s environment {name} (its volumes stay)")
