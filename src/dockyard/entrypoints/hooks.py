"""The git hooks of every app repository. They run inside ``git receive-pack`` during a push.

pre-receive asks dockyard to check what was pushed (``POST /api/v1/apps/APP/push-checks``:
ref names, Dockerfiles, headers, compose file, dockyard.yml; services/push_check.py). The server
reads the pushed objects in git's quarantine folder and parses them in its warm, bounded parser
process; it refuses the push with a message when it cannot be deployed, else queues its deploys.
post-receive follows those deploy jobs and streams their logs back to the pusher's terminal.

A hook is a small process: it imports only a few standard modules (no part of dockyard's
domain), talks plain HTTP/1.0 to the API, and reads from its environment, set by ``git_http``:
DOCKYARD_URL, DOCKYARD_HOOK_TOKEN (good for this push only), DOCKYARD_APP, DOCKYARD_PUSHER and
DOCKYARD_DEPLOYS (JSON: branch -> the environments its pushes deploy to, for post-receive when
pre-receive could not hand its deploys over).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from typing import Any

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


def deploys() -> dict[str, list[str]]:
    """Which environments a push to each branch deploys to (DOCKYARD_DEPLOYS)."""
    try:
        found = json.loads(os.environ.get("DOCKYARD_DEPLOYS") or "{}")
    except ValueError:
        return {}
    return {str(b): [str(e) for e in envs] for b, envs in found.items() if isinstance(envs, list)} \
        if isinstance(found, dict) else {}


# (branch, commit, environment, declared target or ""): the deploys a push queues. pre-receive
# has them queued (the server reads dockyard.yml, which may declare environments), post-receive
# follows them: pre-receive leaves them in a file of the repository named after their common
# parent, git receive-pack.
Deploy = tuple[str, str, str, str]


def _handover() -> str:
    return os.path.join(os.getcwd(), f"dockyard-deploys-{os.getppid()}.json")


def pre_receive(lines: list[str]) -> int:
    """Ask dockyard to check the push; it reads the pushed objects where git keeps them until
    this hook accepts (GIT_QUARANTINE_PATH), and queues the deploys of an accepted push, which
    then start while git stores the objects and runs post-receive."""
    app = os.environ["DOCKYARD_APP"]
    updates = [{"old": parts[0], "new": parts[1], "ref": parts[2]}
               for parts in (line.split() for line in lines) if len(parts) == 3]
    answer = _request("POST", f"/api/v1/apps/{app}/push-checks",
                      {"updates": updates, "incoming": os.environ.get("GIT_QUARANTINE_PATH", ""),
                       "pusher": os.environ.get("DOCKYARD_PUSHER"), "repo": os.environ.get("DOCKYARD_REPO", "")})
    text = answer.text()
    try:
        verdict = json.loads(text)
        accepted = bool(verdict["accepted"])
    except (ValueError, KeyError, TypeError):
        raise ApiError(f"HTTP {answer.status}: {text[:300]}") from None
    if not accepted:
        say(f" !     Push rejected: {verdict.get('message', '')}")
        if verdict.get("hint"):
            say(f" !     {verdict['hint']}")
        say(" !     Nothing was deployed; the running release keeps serving.")
        return 1
    for line in verdict.get("said") or ():
        say(str(line))
    queued = [[d["branch"], d["commit"], d["environment"], d["target"], d["job"]] for d in verdict.get("deploys") or ()]
    try:
        _forget_old_handovers()
        with open(_handover(), "w") as handover:
            handover.write(json.dumps(queued))
    except OSError:
        pass  # post-receive goes by DOCKYARD_DEPLOYS
    return 0


def _forget_old_handovers(older_than: float = 3600.0) -> None:
    """Hand-overs of pushes whose post-receive never ran (git refused the update after
    pre-receive accepted it) go after an hour."""
    import time
    from pathlib import Path

    for path in Path.cwd().glob("dockyard-deploys-*.json"):
        try:
            if time.time() - path.stat().st_mtime > older_than:
                path.unlink()
        except OSError:
            continue


def _deploys(lines: list[str], targets: dict[str, list[str]]) -> list[tuple[Deploy, int | None]]:
    """The deploys pre-receive queued, each with its job (None: pre-receive could not queue it),
    or else one for each environment the pushed branches deploy to."""
    handover = _handover()
    try:
        with open(handover) as file:
            found = json.loads(file.read())
        os.unlink(handover)
        return [((str(b), str(c), str(e), str(t)), int(j) if j is not None else None) for b, c, e, t, j in found]
    except (OSError, ValueError, TypeError):
        pass
    out: list[tuple[Deploy, int | None]] = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("refs/heads/") and parts[1] != ZERO:
            branch = parts[2].removeprefix("refs/heads/")
            out += [((branch, parts[1], env, ""), None) for env in targets.get(branch, [])]
    return out


def post_receive(lines: list[str]) -> int:
    app, targets = os.environ["DOCKYARD_APP"], deploys()
    queued = _deploys(lines, targets)
    for line in lines:
        parts = line.split()
        branch = parts[2].removeprefix("refs/heads/") if len(parts) == 3 else ""
        if parts[1:2] != [ZERO] and parts[2:3] == [f"refs/heads/{branch}"] and all(q[0] != branch for q, _ in queued):
            where = "; ".join(f"{', '.join(envs)} from {b!r}" for b, envs in targets.items()) or "from no branch"
            say(f"-----> {branch} stored; {app} deploys {where}")
    jobs = []
    for (branch, new, environment, _target), queued_job in queued:
        if queued_job is None:  # pre-receive could not queue it: now
            r = _request("POST", f"/api/v1/apps/{app}/environments/{environment}/deploys",
                         {"commit": new, "branch": branch, "pusher": os.environ.get("DOCKYARD_PUSHER"),
                          "repo": os.environ.get("DOCKYARD_REPO", "")})
            answer = r.text()
            if r.status != 202:
                say(f" !     dockyard could not queue the deploy to {environment}: {answer}")
                continue
            queued_job = int(json.loads(answer)["id"])
        jobs.append(queued_job)  # (a job pre-receive queued may have ended already: its log is followed all the same)
        say(f"-----> Queued deploy job {queued_job} to {environment} "
            f"(follow it with: dockyard jobs show {queued_job} -f)")
    for job_id in jobs:
        if len(jobs) > 1:
            say(f"-----> Job {job_id}:")
        for text in _request("GET", f"/api/v1/jobs/{job_id}/logs?follow=true").lines():
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


def run(hook: str) -> NoReturn:
    """The hook's process (the script git runs): ``main``, its output flushed, then out at once
    (git stores the push only once pre-receive has exited, and the deploy job waits for that)."""
    code = main(hook)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
