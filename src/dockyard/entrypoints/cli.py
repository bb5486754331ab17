"""The `dockyard` command. Everything but `server` talks to the API (DOCKYARD_URL, DOCKYARD_TOKEN)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import httpx
import typer

from dockyard import __version__

cli = typer.Typer(help="dockyard: git push to production on Docker.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
apps_cli = typer.Typer(help="Create, list and delete apps.", invoke_without_command=True)
tokens_cli = typer.Typer(help="API and git tokens.", no_args_is_help=True)
domains_cli = typer.Typer(help="Domains an app answers at.", no_args_is_help=True)
jobs_cli = typer.Typer(help="Builds and deploys, as persisted jobs.", invoke_without_command=True)
cli.add_typer(apps_cli, name="apps")
cli.add_typer(tokens_cli, name="tokens")
cli.add_typer(domains_cli, name="domains")
cli.add_typer(jobs_cli, name="jobs")

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


def client() -> httpx.Client:
    conf = _config()
    url = os.environ.get("DOCKYARD_URL") or conf.get("url") or "http://127.0.0.1:7700"
    token = os.environ.get("DOCKYARD_TOKEN") or conf.get("token")
    if not token:
        fail("no token", "set DOCKYARD_TOKEN, or run: dockyard login --url URL --token TOKEN")
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


@cli.command()
def server() -> None:
    """Run the dockyard server: API, git endpoint, job workers, registry and proxy."""
    import logging

    import uvicorn

    from dockyard.config import Settings
    from dockyard.entrypoints.api import create_app

    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # h11: the git hooks speak plain HTTP/1.0 and read the body as it comes, unchunked.
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_level="warning",
                timeout_graceful_shutdown=10, http="h11")


@cli.command()
def login(url: Annotated[str, typer.Option(help="dockyard's API URL")],
          token: Annotated[str, typer.Option(help="an API token")]) -> None:
    """Remember the API URL and token for later commands."""
    CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CONFIG.touch(mode=0o600)
    CONFIG.write_text(json.dumps({"url": url, "token": token}))
    typer.echo(f"saved to {CONFIG}")


@cli.command()
def version() -> None:
    """Print dockyard's version."""
    typer.echo(__version__)


@apps_cli.callback()
def apps(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List apps (with no subcommand)."""
    if ctx.invoked_subcommand:
        return
    rows = call("GET", "/api/v1/apps")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table(rows, ["name", "deploy_branch", "git_remote"])


@apps_cli.command("create")
def apps_create(
    name: str,
    branch: Annotated[str, typer.Option(help="the branch whose pushes deploy")] = "main",
    domain: Annotated[list[str] | None, typer.Option(help="a domain the app answers at (repeatable)")] = None,
) -> None:
    """Create an app and print the git remote to push to."""
    app = call("POST", "/api/v1/apps", json={"name": name, "deploy_branch": branch, "domains": domain or []})
    typer.echo(f"created {app['name']}; push to deploy:\n")
    typer.echo(f"  git remote add dockyard {app['git_remote']}")
    typer.echo(f"  git push dockyard {app['deploy_branch']}\n")
    typer.echo("git asks for a password: give a dockyard token (any user name).")
    typer.echo(app["git_remote"])


@apps_cli.command("delete")
def apps_delete(name: str, yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False) -> None:
    """Delete an app: its containers, routes, network, repository and records."""
    if not yes and not typer.confirm(f"delete {name} and everything it runs?"):
        raise typer.Exit(1)
    call("DELETE", f"/api/v1/apps/{q(name)}")
    typer.echo(f"deleted {name}")


@cli.command()
def status(app: str, as_json: JsonOpt = False) -> None:
    """Show an app's live release, its containers and its URLs."""
    data = call("GET", f"/api/v1/apps/{q(app)}")
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    live = data["live_release"]
    typer.echo(f"app      {app}")
    typer.echo(f"remote   {data['app']['git_remote']}")
    if live:
        typer.echo(f"release  {live['id']} (commit {live['commit'][:10]}, {live['status']} since {live['finished_at']})")
    else:
        typer.echo("release  none yet: push to deploy")
    for url in data["urls"]:
        typer.echo(f"url      {url}")
    if data["last_job"]:
        job = data["last_job"]
        typer.echo(f"last job {job['id']} {job['kind']} {job['status']}" + (f": {job['error']}" if job["error"] else ""))
    typer.echo("")
    table([dict(c, id=c["id"][:12]) for c in data["containers"]],
          ["service", "release", "state", "upstream", "id"])


@cli.command()
def logs(app: str, follow: Annotated[bool, typer.Option("-f", "--follow", help="keep streaming")] = False,
         tail: Annotated[int, typer.Option(help="lines of history per container")] = 100) -> None:
    """Show the output of an app's containers."""
    stream(f"/api/v1/apps/{q(app)}/logs", {"follow": follow, "tail": tail})


@cli.command()
def images(app: str, as_json: JsonOpt = False) -> None:
    """List the images built for an app: name, version, digest, commit, size, date."""
    rows = call("GET", f"/api/v1/apps/{q(app)}/images")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([dict(r, commit=r["commit"][:10], digest=r["digest"][:19], size=f"{r['size'] / 1e6:.1f}MB",
                created_at=str(r["created_at"])[:19]) for r in rows],
          ["repository", "version", "digest", "commit", "size", "created_at"])


@cli.command()
def releases(app: str, as_json: JsonOpt = False) -> None:
    """List an app's releases, newest first."""
    rows = call("GET", f"/api/v1/apps/{q(app)}/releases")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([dict(r, commit=r["commit"][:10], created_at=str(r["created_at"])[:19],
                services=",".join(s["name"] for s in r["services"])) for r in rows],
          ["id", "environment", "status", "commit", "services", "created_at", "error"])


@cli.command()
def deploy(app: str, commit: Annotated[str | None, typer.Option(help="full commit id")] = None,
           follow: Annotated[bool, typer.Option(help="stream the job's log")] = True) -> None:
    """Build and release the deploy branch's head again (or a given commit)."""
    job = call("POST", f"/api/v1/apps/{q(app)}/deploys", json={"commit": commit})
    typer.echo(f"queued job {job['id']}")
    if follow:
        stream(f"/api/v1/jobs/{job['id']}/logs", {"follow": True})
        if call("GET", f"/api/v1/jobs/{job['id']}")["status"] != "succeeded":
            raise typer.Exit(1)


@jobs_cli.callback()
def jobs(ctx: typer.Context, app: Annotated[str | None, typer.Option(help="only this app's")] = None,
         as_json: JsonOpt = False) -> None:
    """List recent jobs (with no subcommand)."""
    if ctx.invoked_subcommand:
        return
    rows = call("GET", "/api/v1/jobs", params={"app": app} if app else {})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table([dict(r, created_at=str(r["created_at"])[:19], error=(r["error"] or "")[:60]) for r in rows],
          ["id", "kind", "app", "status", "created_at", "error"])


@jobs_cli.command("show")
def jobs_show(job_id: int, follow: Annotated[bool, typer.Option("-f", "--follow")] = False) -> None:
    """Print a job's log (and follow it until it ends)."""
    stream(f"/api/v1/jobs/{job_id}/logs", {"follow": follow})


@domains_cli.command("add")
def domains_add(app: str, domain: str) -> None:
    """Make an app answer at DOMAIN too (from its next deploy)."""
    current = call("GET", f"/api/v1/apps/{q(app)}")["app"]["domains"]
    out = call("PUT", f"/api/v1/apps/{q(app)}/domains", json={"domains": sorted({*current, domain})})
    typer.echo(" ".join(out["domains"]))


@domains_cli.command("remove")
def domains_remove(app: str, domain: str) -> None:
    """Stop answering at DOMAIN (from the app's next deploy)."""
    current = call("GET", f"/api/v1/apps/{q(app)}")["app"]["domains"]
    out = call("PUT", f"/api/v1/apps/{q(app)}/domains", json={"domains": [d for d in current if d != domain]})
    typer.echo(" ".join(out["domains"]) or "(none)")


@tokens_cli.command("create")
def tokens_create(name: str) -> None:
    """Create a token (shown once)."""
    typer.echo(call("POST", "/api/v1/tokens", json={"name": name})["token"])


@tokens_cli.command("list")
def tokens_list() -> None:
    """List tokens (names only; tokens are stored hashed)."""
    table(call("GET", "/api/v1/tokens"), ["name", "role", "created_at", "last_used_at"])


@tokens_cli.command("revoke")
def tokens_revoke(name: str) -> None:
    """Revoke a token."""
    call("DELETE", f"/api/v1/tokens/{q(name)}")
    typer.echo(f"revoked {name}")


def main() -> None:
    try:
        cli()
    except BrokenPipeError:
        sys.exit(0)
