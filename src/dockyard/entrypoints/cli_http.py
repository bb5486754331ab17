"""What every `dockyard` command shares: the API client (DOCKYARD_URL, DOCKYARD_TOKEN or the
file `dockyard login` writes), errors as a red line and a hint, tables, common options."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer

CONFIG = Path(os.environ.get("XDG_CONFIG_HOME", str(Path.home() / ".config"))) / "dockyard" / "cli.json"


def q(segment: str) -> str:
    """A name as one URL path segment: '../tokens' must not reach another route."""
    return quote(segment, safe="")


def fail(message: str, hint: str = "") -> NoReturn:
    typer.secho(f"error: {message}", fg="red", err=True)
    if hint:
        typer.echo(f"  hint: {hint}", err=True)
    raise typer.Exit(1)


def _config() -> dict[str, str]:
    try:
        data: dict[str, str] = json.loads(CONFIG.read_text())
        return data
    except (OSError, ValueError):
        return {}


def endpoint() -> tuple[str, str]:
    """The API's URL and the token to call it with."""
    conf = _config()
    url = os.environ.get("DOCKYARD_URL") or conf.get("url") or "http://127.0.0.1:7700"
    token = os.environ.get("DOCKYARD_TOKEN") or conf.get("token")
    if not token:
        fail("no token", "set DOCKYARD_TOKEN, or run: dockyard login --url URL --token TOKEN")
    return url, token


def client() -> httpx.Client:
    url, token = endpoint()
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                        timeout=httpx.Timeout(60, read=None))


def call(method: str, path: str, **kwargs: Any) -> Any:
    try:
        with client() as c:
            r = c.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        fail(f"dockyard's API does not answer ({exc})", "is `dockyard server` running? check DOCKYARD_URL")
    if r.status_code >= 400:
        try:
            body = r.json()
            fail(body.get("error") or str(body.get("detail")), body.get("hint", ""))
        except ValueError:
            fail(f"{r.status_code}: {r.text[:300]}")
    return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None


def stream(path: str, params: dict[str, Any]) -> None:
    try:
        with client() as c, c.stream("GET", path, params=params) as r:
            if r.status_code >= 400:
                r.read()
                fail(r.json().get("error", r.text))
            for line in r.iter_lines():
                typer.echo(line)
    except httpx.HTTPError as exc:
        fail(f"dockyard's API does not answer ({exc})")
    except KeyboardInterrupt:
        pass


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        typer.echo("(none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    typer.echo("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for r in rows:
        typer.echo("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns).rstrip())


JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")]
EnvOpt = Annotated[str, typer.Option("--env", "-e", help="the app's environment")]
