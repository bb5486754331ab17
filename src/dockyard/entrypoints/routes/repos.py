"""An app's repos: its own (the deploy repo) and source repos, each with a git remote."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.entrypoints.deps import AppManager, Origin, PlatformDep, Reader
from dockyard.services.events import Event
from dockyard.services.repos import RepoView

router = APIRouter(prefix="/api/v1/apps/{name}/repos", tags=["repos"])


class RepoIn(BaseModel):
    name: str = Field(max_length=64, examples=["api"])
    role: Literal["source", "deploy"] = Field(
        "source", description="source: builds images the stack names; deploy: names the app's own repository "
                              "(the stack and dockyard.yml), pushed to at /git/APP/NAME.git too")


class RepoOut(BaseModel):
    name: str
    role: str = Field(description="source or deploy")
    remote: str = Field(description="git push here (password: a token)")
    own: bool = Field(description="the app's own repository: the deploy repo")
    images: list[str] = Field(description="the newest build of each image it built, NAME:VERSION")
    built_at: datetime | None = Field(description="its newest build")


def repo_out(view: RepoView) -> RepoOut:
    return RepoOut(name=view.name, role=view.role, remote=view.remote, own=view.own, images=list(view.images),
                   built_at=view.built_at)


@router.get("")
def list_repos(name: str, p: PlatformDep, _: Reader) -> list[RepoOut]:
    """The app's repos: its own (the deploy repo) first, then its source repos."""
    return [repo_out(v) for v in p.app_repos.list(name)]


@router.post("", status_code=201)
def add_repo(name: str, body: RepoIn, p: PlatformDep, who: AppManager, source: Origin) -> RepoOut:
    """Add a repo to the app. A push to a source repo builds its images, then releases the deploy
    repo's stack to the environments its branch deploys to, each image pinned to its newest build."""
    added = p.app_repos.add(name, body.name, body.role)
    p.events.publish(Event("repo.added", who.name, source, added.app, detail={"repo": added.name, "role": added.role}))
    return next(repo_out(v) for v in p.app_repos.list(added.app) if v.name == added.name)


@router.delete("/{repo}", status_code=204)
def remove_repo(name: str, repo: str, p: PlatformDep, who: AppManager, source: Origin) -> None:
    """Remove a repo of the app, with its git history (its images stay until garbage collection)."""
    p.app_repos.remove(name, repo)
    p.events.publish(Event("repo.removed", who.name, source, name, detail={"repo": repo}))
