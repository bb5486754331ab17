"""`dockyard users` and `dockyard tokens`: who may act on dockyard, and the tokens they act with."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard.entrypoints.cli_http import call, q, table

ROLES_HELP = ("developer: push, deploy, roll back, scale and configure unprotected environments; approver: that, "
              "and approve releases; admin: everything, protected environments included")
users_cli = typer.Typer(help="Users and their roles (developer, approver, admin).", no_args_is_help=True)
tokens_cli = typer.Typer(help="API and git tokens: each belongs to a user and acts with that user's role.",
                         no_args_is_help=True)
RoleOpt = Annotated[str, typer.Option("--role", help=ROLES_HELP)]


@users_cli.command("list")
def users_list() -> None:
    """List users: name, role, how many tokens they hold."""
    table(call("GET", "/api/v1/users"), ["name", "role", "tokens", "created_at"])


@users_cli.command("add")
def users_add(name: str, role: RoleOpt = "developer") -> None:
    """Add a user with a first token (named as the user), shown once: give it to them as
    DOCKYARD_TOKEN and as their git password."""
    out = call("POST", "/api/v1/users", json={"name": name, "role": role})
    typer.echo(f"user {out['name']} ({out['role']}); their token (shown once):", err=True)
    typer.echo(out["token"])


@users_cli.command("set-role")
def users_set_role(name: str, role: Annotated[str, typer.Argument(help=ROLES_HELP)]) -> None:
    """Change a user's role; every token of theirs follows. The last admin stays admin."""
    out = call("PUT", f"/api/v1/users/{q(name)}/role", json={"role": role})
    typer.echo(f"{out['name']} is now {out['role']}")


@users_cli.command("remove")
def users_remove(name: str) -> None:
    """Remove a user and revoke every token of theirs. The last admin cannot be removed."""
    call("DELETE", f"/api/v1/users/{q(name)}")
    typer.echo(f"removed {name} and their tokens")


@tokens_cli.command("create")
def tokens_create(name: str,
                  user: Annotated[str | None, typer.Option("--user", help="the user it belongs to; default: a new "
                                                                          "user named as the token")] = None,
                  role: RoleOpt = "admin") -> None:
    """Create a token (shown once). Without --user, it is a new user's (named as the token, with --role)."""
    body: dict[str, str] = {"name": name, "role": role}
    if user:
        body["user"] = user
    typer.echo(call("POST", "/api/v1/tokens", json=body)["token"])


@tokens_cli.command("list")
def tokens_list() -> None:
    """List tokens (names only; tokens are stored hashed)."""
    table(call("GET", "/api/v1/tokens"), ["name", "user", "role", "created_at", "last_used_at"])


@tokens_cli.command("revoke")
def tokens_revoke(name: str) -> None:
    """Revoke a token."""
    call("DELETE", f"/api/v1/tokens/{q(name)}")
    typer.echo(f"revoked {name}")
