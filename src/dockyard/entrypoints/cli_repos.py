"""`dockyard repos`: an app's repos, its own (the deploy repo) and source repos."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from dockyard.entrypoints.cli_http import JsonOpt, call, q, table

repos_cli = typer.Typer(
    help="An app's repos. Its own repository is the deploy repo: the stack (compose file) and dockyard.yml, and "
         "Dockerfiles of its own if it has any. A source repo builds images the stack names by their Dockerfile "
         "headers (name and VERSION): a push to it builds them (and rebuilds the repos that build FROM them), then "
         "releases the deploy repo's stack, every image pinned to its newest build, to the environments its "
         "branch deploys to.",
    no_args_is_help=True,
)


def _row(repo: dict[str, Any]) -> dict[str, Any]:
    return dict(repo, images=", ".join(repo["images"]) or "-", built_at=str(repo["built_at"] or "-")[:19])


@repos_cli.command("list")
def repos_list(app: str, as_json: JsonOpt = False) -> None:
    """List APP's repos: name, role, git remote, the newest build of each image it built."""
    repos = call("GET", f"/api/v1/apps/{q(app)}/repos")
    if as_json:
        typer.echo(json.dumps(repos, indent=2))
        return
    table([_row(r) for r in repos], ["name", "role", "remote", "images", "built_at"])


@repos_cli.command("add")
def repos_add(
    app: str,
    name: str,
    role: Annotated[str, typer.Option(help="source: builds images the stack names; deploy: names the app's own "
                                           "repository (the stack and dockyard.yml)")] = "source",
    as_json: JsonOpt = False,
) -> None:
    """Add repo NAME to APP; push to the remote it prints (password: a token)."""
    repo = call("POST", f"/api/v1/apps/{q(app)}/repos", json={"name": name, "role": role})
    if as_json:
        typer.echo(json.dumps(repo, indent=2))
        return
    what = "builds images for the stack" if repo["role"] == "source" else "is the app's deploy repo"
    typer.echo(f"added repo {repo['name']} to {app}: it {what}")
    typer.echo(f"push to it: git remote add dockyard {repo['remote']} && git push dockyard BRANCH")


@repos_cli.command("remove")
def repos_remove(app: str, name: str) -> None:
    """Remove repo NAME of APP, with its git history (its images stay until garbage collection)."""
    call("DELETE", f"/api/v1/apps/{q(app)}/repos/{q(name)}")
    typer.echo(f"removed repo {name} of {app}")
