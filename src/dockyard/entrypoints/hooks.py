"""The git hooks of every app repository. They run inside ``git receive-pack`` during a push.

pre-receive checks what was pushed (ref names, Dockerfiles, headers, compose file) and refuses
it with a message when it cannot be deployed; post-receive queues the deploy job and streams its
log back to the pusher's terminal.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Imports of dockyard's domain are made inside pre_receive: post-receive, which runs on every
# push before the deploy starts, loads nothing but the standard library.
ZERO = "0" * 40


def say(line: str = "") -> None:
    print(line, flush=True)


class ApiError(Exception):
    pass


class Answer:
    """An HTTP/1.0 answer read from a socket: status, then the body line by line."""

    def __init__(self, sock: socket.socket) -> None:
        self.file = sock.makefile("rb")
        status_line = self.file.readline().decode(errors="replace")
        try:
            self.status = int(status_line.split()[1])
        except (IndexError, ValueError):
            raise ApiError(f"not an HTTP answer: {status_line!r}") from None
        while self.file.readline().strip():  # headers: not needed
            pass

    def lines(self) -> Iterator[str]:
        while raw := self.file.readline():
            yield raw.decode(errors="replace").rstrip("\n")

    def text(self) -> str:
        return self.file.read().decode(errors="replace")


def _request(method: str, path: str, body: dict[str, Any] | None = None) -> Answer:
    """One call to dockyard's API. Plain HTTP/1.0 over a socket: a hook runs on every push, and
    this keeps its start quick (http.client alone takes longer to import than the rest)."""
    url = urlsplit(os.environ["DOCKYARD_URL"])
    data = json.dumps(body).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.0\r\nHost: {url.netloc}\r\n"
        f"Authorization: Bearer {os.environ['DOCKYARD_HOOK_TOKEN']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    try:
        sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=600)
        sock.sendall(head.encode() + data)
        return Answer(sock)
    except OSError as exc:
        raise ApiError(str(exc)) from None


def check_update(repo: Path, app: str, deploy_branch: str, old: str, new: str, ref: str) -> None:
    """Raise a DockyardError when this ref update must be refused."""
    from dockyard.adapters.git import check_ref_format, list_files, read_file
    from dockyard.domain import images, names, stack
    from dockyard.domain.errors import DockyardError

    if ref.startswith("refs/heads/"):
        kind, name = "branch", ref.removeprefix("refs/heads/")
    elif ref.startswith("refs/tags/"):
        kind, name = "tag", ref.removeprefix("refs/tags/")
    else:
        raise DockyardError(f"{ref}: only branches and tags can be pushed")
    names.branch_name(name)
    if not check_ref_format(name):
        raise DockyardError(f"{kind} name {name!r} is not accepted by git")
    if kind != "branch" or name != deploy_branch:
        return
    if new.strip("0") == "":
        raise DockyardError(f"the deploy branch {name!r} cannot be deleted",
                            "delete the app instead: dockyard apps delete " + app)
    files = list_files(repo, new)
    texts = {p: read_file(repo, new, p) or "" for p in images.find_dockerfiles(files)}
    specs = images.discover(texts, app)
    stack.commit_services(
        app, set(files), lambda p: read_file(repo, new, p), {s.dockerfile: s for s in specs},
        {s.dockerfile: f"validation/{s.basename}" for s in specs},
        os.environ.get("DOCKYARD_BASE_DOMAIN", "localhost"), (),
    )


def pre_receive(lines: list[str]) -> int:
    from dockyard.domain.errors import DockyardError

    app, branch = os.environ["DOCKYARD_APP"], os.environ["DOCKYARD_DEPLOY_BRANCH"]
    repo = Path.cwd()
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        old, new, ref = parts
        try:
            check_update(repo, app, branch, old, new, ref)
        except DockyardError as exc:
            say(f" !     Push rejected: {exc.message}")
            if exc.hint:
                say(f" !     {exc.hint}")
            say(" !     Nothing was deployed; the running release keeps serving.")
            try:
                _request("POST", f"/api/v1/apps/{app}/rejected-pushes",
                         {"ref": ref, "reason": str(exc), "pusher": os.environ.get("DOCKYARD_PUSHER")}).text()
            except ApiError:
                pass
            return 1
    # Accepted: queue the deploy now, so it starts while git stores the objects and runs
    # post-receive (which finds this job and streams its log). The job waits for the ref.
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[2] == f"refs/heads/{branch}" and parts[1] != ZERO:
            try:
                _request("POST", f"/api/v1/apps/{app}/deploys", {
                    "commit": parts[1], "branch": branch, "pusher": os.environ.get("DOCKYARD_PUSHER"),
                    "await_push": True,
                }).text()
            except ApiError:
                pass  # post-receive queues it
    return 0


def post_receive(lines: list[str]) -> int:
    app, branch = os.environ["DOCKYARD_APP"], os.environ["DOCKYARD_DEPLOY_BRANCH"]
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        _old, new, ref = parts
        if ref != f"refs/heads/{branch}":
            say(f"-----> {ref.removeprefix('refs/heads/')} stored; {app} deploys from {branch!r}")
            continue
        if new == ZERO:
            continue
        r = _request("POST", f"/api/v1/apps/{app}/deploys",
                     {"commit": new, "branch": branch, "pusher": os.environ.get("DOCKYARD_PUSHER")})
        answer = r.text()
        if r.status != 202:
            say(f" !     dockyard could not queue the deploy: {answer}")
            return 0
        job = json.loads(answer)
        say(f"-----> Queued deploy job {job['id']} (follow it with: dockyard jobs show {job['id']} -f)")
        for text in _request("GET", f"/api/v1/jobs/{job['id']}/logs?follow=true").lines():
            say(text)
    return 0


def main(hook: str) -> int:
    lines = sys.stdin.read().splitlines()
    try:
        if hook == "pre-receive":
            return pre_receive(lines)
        return post_receive(lines)
    except (ApiError, OSError) as exc:
        if hook == "pre-receive":
            say(f" !     dockyard's API did not answer: {exc}. Nothing was deployed.")
            return 1
        say(f" !     stopped following the deploy ({exc}); it goes on: dockyard jobs --app "
            f"{os.environ.get('DOCKYARD_APP', '')}")
        return 0
