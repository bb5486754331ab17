"""`dockyard audit`: what happened, who did it, when and from where; the hash chain verified."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from dockyard.entrypoints.cli_http import JsonOpt, call, table

COLUMNS = ["id", "at", "actor", "source", "action", "app", "env", "detail"]


def _value(v: Any) -> str:
    plain = isinstance(v, str) and v and not any(c.isspace() or c in "\"=" for c in v)
    return str(v) if plain else json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _detail(detail: dict[str, Any]) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in sorted(detail.items()))


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    return dict(entry, at=entry["at"][:19].replace("T", " "), app=entry["app"] or "",
                env=entry["environment"] or "", detail=_detail(entry["detail"]))


def audit(app: Annotated[str | None, typer.Option("--app", help="only the entries of this app")] = None,
          limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="how many entries, newest first")]
          = 50,
          before: Annotated[int | None, typer.Option("--before", help="entries older than this id (the next page)")]
          = None,
          verify: Annotated[bool, typer.Option("--verify", help="check the whole hash chain instead of listing; "
                                                                 "exits 1 when it is broken")] = False,
          as_json: JsonOpt = False) -> None:
    """The audit log (admin): every push, deploy, rollback, scale, release aborted or paused,
    variable and secret change (names only), token and user change, app and environment created
    or removed, garbage collection, and denied request, newest first: who, when (UTC), what,
    from where.

    Each entry hashes the one before it: --verify names the first entry where the chain breaks.
    """
    if verify:
        result = call("GET", "/api/v1/audit/verify")
        if as_json:
            typer.echo(json.dumps(result, indent=2))
        elif result["ok"]:
            typer.echo(f"audit log verified: {result['entries']} entries")
            if result["head"]:
                typer.echo(f"  head: {result['head']} (note it elsewhere: a later check can tell nothing was cut off)")
        else:
            typer.secho(f"audit log broken at entry {result['first_broken']}: {result['reason']}", fg="red")
        if not result["ok"]:
            raise typer.Exit(1)
        return
    params: dict[str, Any] = {"limit": limit}
    if app:
        params["app"] = app
    if before is not None:
        params["before"] = before
    entries = call("GET", "/api/v1/audit", params=params)
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table([_row(e) for e in entries], COLUMNS)
