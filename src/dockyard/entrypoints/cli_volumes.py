"""`dockyard volumes`: an environment's named volumes, their backups, restores and copies."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from dockyard.entrypoints.cli_http import EnvOpt, JsonOpt, call, fail, q, table

volumes_cli = typer.Typer(
    help="An environment's named volumes (data that outlives releases): list, back up, restore, copy between "
         "environments, remove. No deploy and no failed release removes a volume.",
    no_args_is_help=True,
)


def _base(app: str, env: str) -> str:
    return f"/api/v1/apps/{q(app)}/environments/{q(env)}/volumes"


def _said(archive: dict[str, Any], what: str) -> None:
    running = f"; taken while {', '.join(archive['running'])} ran" if archive["running"] else ""
    typer.echo(f"{what} {archive['volume']} of {archive['app']} ({archive['environment']}): backup {archive['id']}, "
               f"{archive['bytes'] / 1e6:.2f} MB, sha256 {archive['sha256'][:16]}...{running}")


@volumes_cli.command("list")
def volumes_list(app: str, env: EnvOpt = "production", as_json: JsonOpt = False) -> None:
    """List an environment's named volumes with their sizes and the services that mount them."""
    rows = call("GET", _base(app, env))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([{**r, "size": "?" if r["size"] is None else f"{r['size'] / 1e6:.1f} MB",
            "used_by": ", ".join(r["used_by"]) or "-"} for r in rows], ["name", "size", "used_by", "volume"])


@volumes_cli.command("rm")
def volumes_rm(app: str, volume: str, env: EnvOpt = "production",
               yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Remove a volume and its data for good (refused while a container mounts it)."""
    if not yes:
        typed = typer.prompt(f"this deletes the data of volume {volume} of {app} ({env}) for good; "
                             "type its name to confirm")
        if typed != volume:
            fail("not confirmed: nothing was removed")
    call("DELETE", f"{_base(app, env)}/{q(volume)}", params={"confirm": volume})
    typer.echo(f"removed volume {volume} of {app} ({env})")


@volumes_cli.command("backup")
def volumes_backup(app: str, volume: str, env: EnvOpt = "production", as_json: JsonOpt = False) -> None:
    """Archive a volume's files now (tar, gzip, SHA-256) under DOCKYARD_HOME/backups on the server.

    Its services keep running, and the backup says so: stop them, or quiesce the data (dockyard run ...),
    for a consistent copy."""
    archive = call("POST", f"{_base(app, env)}/{q(volume)}/backups")
    if as_json:
        typer.echo(json.dumps(archive, indent=2))
        return
    _said(archive, "backed up")


@volumes_cli.command("backups")
def volumes_backups(app: str, env: Annotated[str | None, typer.Option("--env", "-e", help="only this environment's")]
                    = None, volume: Annotated[str | None, typer.Option(help="only this volume's")] = None,
                    as_json: JsonOpt = False) -> None:
    """List the app's volume backups, newest first."""
    params = {k: v for k, v in (("environment", env), ("volume", volume)) if v}
    rows = call("GET", f"/api/v1/apps/{q(app)}/backups", params=params)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([{**r, "size": f"{r['bytes'] / 1e6:.2f} MB", "sha256": r["sha256"][:16],
            "running": ", ".join(r["running"]) or "-"} for r in rows],
          ["id", "environment", "volume", "size", "created_at", "by", "running", "sha256"])


@volumes_cli.command("restore")
def volumes_restore(app: str, volume: str, archive: Annotated[str, typer.Argument(metavar="BACKUP")],
                    env: EnvOpt = "production", yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
                    ) -> None:
    """Replace a volume's files with a backup's (of any environment of the app).

    Its checksum is checked first; the services that mount the volume stop meanwhile, and start again."""
    if not yes and not typer.confirm(f"replace the files of volume {volume} of {app} ({env}) with backup {archive}?"):
        raise typer.Exit(1)
    done = call("POST", f"{_base(app, env)}/{q(volume)}/restore", json={"archive": archive})
    typer.echo(f"restored volume {volume} of {app} ({env}) from backup {done['id']} (of {done['environment']})")


@volumes_cli.command("copy")
def volumes_copy(app: str, volume: str,
                 source: Annotated[str, typer.Option("--from", help="the environment to copy from")],
                 target: Annotated[str, typer.Option("--to", help="the environment whose volume is replaced")],
                 yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Copy a volume from one environment of the app to another: a backup of it (kept), restored there.

    Into a protected environment only an admin may."""
    if not yes and not typer.confirm(f"replace the files of volume {volume} of {app} ({target}) with {source}'s?"):
        raise typer.Exit(1)
    done = call("POST", f"{_base(app, target)}/{q(volume)}/copy", json={"from": source})
    _said(done, f"copied into {target}:")
