"""The git hooks of every app repository. They run inside ``git receive-pack`` during a push.

pre-receive checks what was pushed (ref names, Dockerfiles, headers, compose file) and refuses
it with a message when it cannot be deployed, else prints the checks' warnings (`` !     warning:
...``; the push goes on); post-receive queues the deploy job and streams its log back to the
pusher's terminal.

pre-receive parses pushed files in its own process, so it bounds itself first (memory and time,
``bound_checking``). It reads from its environment, set by ``git_http``: DOCKYARD_APP,
DOCKYARD_DEPLOY_BRANCH, DOCKYARD_BASE_DOMAIN, DOCKYARD_REGISTRY (host:port of dockyard's
registry: a Dockerfile header may name an image there only under its own app) and
DOCKYARD_HOST_ACCESS (comma-separated HOST_ACCESS_KEYS an admin allowed for the app).
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


# The checking of a push bounds itself: a runaway parse is stopped, and the push refused.
CHECK_SECONDS = 20
CHECK_MEGABYTES = 512  # address space; git's pack windows are bounded to fit (adapters/git.py)


class CheckTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise CheckTimeout


def bound_checking(seconds: int = CHECK_SECONDS, megabytes: int = CHECK_MEGABYTES) -> None:
    """Limit this process's memory (RLIMIT_AS, which the git processes it starts inherit) and
    the time of its checks: SIGALRM after ``seconds`` stops them, RLIMIT_CPU kills a process
    stuck where no signal handler runs."""
    import resource
    import signal

    resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))
    resource.setrlimit(resource.RLIMIT_CPU, (seconds + 5, seconds + 6))
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def end_of_checking() -> None:
    import signal

    signal.setitimer(signal.ITIMER_REAL, 0)


def host_access() -> frozenset[str]:
    """The host access keys an admin allowed for the app (DOCKYARD_HOST_ACCESS, comma-separated)."""
    return frozenset(k.strip() for k in os.environ.get("DOCKYARD_HOST_ACCESS", "").split(",") if k.strip())


def variables() -> dict[str, str]:
    """The environment's variables, for the compose file's ${VAR} (DOCKYARD_VARIABLES, JSON)."""
    try:
        found = json.loads(os.environ.get("DOCKYARD_VARIABLES") or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def check_update(repo: Path, app: str, deploy_branch: str, old: str, new: str, ref: str) -> None:
    """Raise a DockyardError when this ref update must be refused. (Its warnings are given by the
    deploy job's log, which the push streams and which keeps them.)"""
    from dockyard.adapters.git import Tree, check_ref_format
    from dockyard.domain import names
    from dockyard.domain.errors import DockyardError
    from dockyard.services.inspect import parse_source

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
    with Tree(repo, new) as tree:
        parse_source(
            tree.paths(), tree.read, app, base_domain=os.environ.get("DOCKYARD_BASE_DOMAIN", "localhost"),
            registry=os.environ.get("DOCKYARD_REGISTRY", ""), allowed=host_access(), variables=variables(),
        )


def pre_receive(lines: list[str]) -> int:
    from dockyard.domain.errors import DockyardError, InvalidSource

    app, branch = os.environ["DOCKYARD_APP"], os.environ["DOCKYARD_DEPLOY_BRANCH"]
    repo = Path.cwd()
    updates = [parts for parts in (line.split() for line in lines) if len(parts) == 3]
    ref, refusal = "", None
    bound_checking()
    try:
        for old, new, ref in updates:
            check_update(repo, app, branch, old, new, ref)
    except DockyardError as exc:
        refusal = exc
    except CheckTimeout:
        refusal = InvalidSource(f"checking the pushed files took longer than {CHECK_SECONDS} s",
                                "simplify the Dockerfiles and the compose file")
    except MemoryError:
        refusal = InvalidSource(f"checking the pushed files needed more than {CHECK_MEGABYTES} MB of memory",
                                "simplify the Dockerfiles and the compose file")
    finally:
        end_of_checking()
    if refusal is not None:
        say(f" !     Push rejected: {refusal.message}")
        if refusal.hint:
            say(f" !     {refusal.hint}")
        say(" !     Nothing was deployed; the running release keeps serving.")
        try:
            _request("POST", f"/api/v1/apps/{app}/rejected-pushes",
                     {"ref": ref, "reason": str(refusal), "pusher": os.environ.get("DOCKYARD_PUSHER")}).text()
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
