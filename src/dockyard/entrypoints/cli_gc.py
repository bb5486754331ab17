"""`dockyard gc`: images outside retention removed, from this host and the registry."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from dockyard.entrypoints.cli_http import JsonOpt, call, table


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _rows(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(i, image=f"{i['repository']}:{i['tag']}", size=_bytes(i["size"])) for i in images]


def gc(dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be removed; change nothing")] = False,
       verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list the images kept too, and why")] = False,
       as_json: JsonOpt = False) -> None:
    """Remove the images dockyard built that retention does not keep (admin): from this host and
    from the registry, whose garbage collection frees their blobs while pushes wait. Kept: each
    environment's live release, its DOCKYARD_KEEP_RELEASES newest releases (10 by default),
    releases under way and images containers use; a rollback to a kept release always works."""
    report = call("POST", "/api/v1/gc", params={"dry_run": "true" if dry_run else "false"})
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    columns = ["app", "image", "size", "why"]
    typer.echo("would remove:" if dry_run else "removed:")
    table(_rows(report["removed"]), columns)
    if verbose:
        typer.echo("kept:")
        table(_rows(report["kept"]), columns)
    for note in report["notes"]:
        typer.echo(f"note: {note}")
    if dry_run:
        typer.echo(f"{len(report['removed'])} image(s) would be removed, {len(report['kept'])} kept "
                   f"(the {report['keep_releases']} newest releases of each environment); nothing changed")
        return
    blobs = "" if report["registry_blobs"] is None else f"{report['registry_blobs']} blob(s), "
    typer.echo(f"{len(report['removed'])} image(s) removed, {len(report['kept'])} kept: {report['local_images']} "
               f"local image(s) (of {_bytes(report['local_bytes'])}, layers they shared with others included), "
               f"{report['manifests']} registry manifest(s); the registry freed {blobs}"
               f"{_bytes(report['registry_bytes'])} in {report['seconds']:.1f}s")
