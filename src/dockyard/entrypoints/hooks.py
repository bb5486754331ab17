"""The git hooks of every app repository. They run inside ``git receive-pack`` during a push.

pre-receive checks what was pushed (ref names, Dockerfiles, headers, compose file) and refuses
it with a message when it cannot be deployed, else prints the checks' warnings (`` !     warning:
...``; the push goes on); post-receive queues the deploy job and streams its log back to the
pusher's terminal.

pre-receive parses pushed files in its own process, so it bounds itself first (memory and time,
``bound_checking``). It reads from its environment, set by ``git_http``: DOCKYARD_APP,
DOCKYARD_DEPLOYS (JSON: branch -> the environments its pushes deploy to), DOCKYARD_VARIABLES
(JSON: environment -> its variables, for the compose file's ${VAR}), DOCKYARD_BASE_DOMAIN,
DOCKYARD_REGISTRY (host:port of dockyard's registry: a Dockerfile header may name an image there
only under its own app) and DOCKYARD_HOST_ACCESS (comma-separated HOST_ACCESS_KEYS an admin
allowed for the app).
"""

from __future__ import annotations

import gc
import json
import os
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

# Imports of dockyard's domain (and pathlib) are made inside pre_receive: post-receive, which runs
# on every push while the deploy starts, loads only the few standard modules it uses.
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


def _json_object(name: str) -> dict[str, Any]:
    try:
        found = json.loads(os.environ.get(name) or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def deploys() -> dict[str, list[str]]:
    """Which environments a push to each branch deploys to (DOCKYARD_DEPLOYS)."""
    return {str(b): [str(e) for e in envs] for b, envs in _json_object("DOCKYARD_DEPLOYS").items()
            if isinstance(envs, list)}


def variables(environment: str) -> dict[str, str]:
    """An environment's variables, for the compose file's ${VAR} (DOCKYARD_VARIABLES)."""
    found = _json_object("DOCKYARD_VARIABLES").get(environment)
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def secret_names(environment: str) -> list[str]:
    """The names of an environment's secrets (DOCKYARD_SECRETS): dockyard.yml may require some."""
    found = _json_object("DOCKYARD_SECRETS").get(environment)
    return [str(n) for n in found] if isinstance(found, list) else []


# (branch, commit, environment, declared target or ""): the deploys a push queues. pre-receive
# decides them (it reads dockyard.yml, which may declare environments), post-receive follows them:
# pre-receive leaves them in a file of the repository named after their common parent, git
# receive-pack.
Deploy = tuple[str, str, str, str]


def _handover() -> str:
    return os.path.join(os.getcwd(), f"dockyard-deploys-{os.getppid()}.json")


def check_update(repo: Path, app: str, targets: dict[str, list[str]], old: str, new: str,
                 ref: str) -> list[Deploy]:
    """Raise a DockyardError when this ref update must be refused; else the deploys it makes.
    Environments dockyard.yml declares for the pushed branch, which do not exist yet, are among
    them. (Its warnings are given by the deploy job's log, which the push streams and keeps.)"""
    from dockyard.adapters.git import Tree, check_ref_format
    from dockyard.domain import dockyard_file, names
    from dockyard.domain.declared import with_health, with_replicas
    from dockyard.domain.errors import DockyardError
    from dockyard.domain.limits import MAX_DOCKYARD_FILE_BYTES
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
    environments = [(env, "") for env in targets.get(name, [])] if kind == "branch" else []
    if kind != "branch":
        return []
    if new.strip("0") == "":
        if environments:
            raise DockyardError(f"branch {name!r} deploys to {', '.join(e for e, _ in environments)}: it cannot be "
                                "deleted", "give the environment another branch first (dockyard envs set-branch), or "
                                "delete the app: dockyard apps delete " + app)
        return []
    known = {env for envs in targets.values() for env in envs} | set(_json_list("DOCKYARD_ENVIRONMENTS"))
    with Tree(repo, new) as tree:
        if dockyard_file.SOURCE in tree.paths():  # environments it declares for this branch
            text = tree.read(dockyard_file.SOURCE, MAX_DOCKYARD_FILE_BYTES)
            declared = dockyard_file.load(text) if text is not None else None
            environments += [(e.name, e.target) for e in (declared.environments if declared else ())
                             if e.branch == name and e.name not in known]
        for environment, _ in environments:  # each environment with its own variables and secrets
            found = parse_source(
                tree.paths(), tree.read, app, base_domain=os.environ.get("DOCKYARD_BASE_DOMAIN", "localhost"),
                registry=os.environ.get("DOCKYARD_REGISTRY", ""), allowed=host_access(),
                variables=variables(environment), environment=environment, secret_names=secret_names(environment),
            )
            # refuses a count the service cannot run, a health check of a service without a port
            with_health(with_replicas(found.services, found.declared, environment), found.declared, environment)
    return [(name, new, env, target) for env, target in environments]


def _json_list(name: str) -> list[str]:
    try:
        found = json.loads(os.environ.get(name) or "[]")
    except ValueError:
        return []
    return [str(x) for x in found] if isinstance(found, list) else []


def pre_receive(lines: list[str]) -> int:
    from pathlib import Path

    from dockyard.domain.errors import DockyardError, InvalidSource
    from dockyard.services.inspect import parse_source  # noqa: F401 - the checks' modules (check_update)

    gc.enable()  # off while the modules load (run); on again for the checks, which parse pushed files
    app, targets = os.environ["DOCKYARD_APP"], deploys()
    repo = Path.cwd()
    updates = [parts for parts in (line.split() for line in lines) if len(parts) == 3]
    ref, refusal = "", None
    queued: list[Deploy] = []
    bound_checking()
    try:
        for old, new, ref in updates:
            queued += check_update(repo, app, targets, old, new, ref)
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
    # Accepted: queue the deploys now, so they start while git stores the objects and runs
    # post-receive (which follows them: pre-receive hands them over in a file). The jobs wait
    # for the ref. An environment dockyard.yml declares is added with its first deploy.
    jobs: list[int | None] = []  # each deploy's job, handed over to post-receive, which follows it
    for branch, new, environment, target in queued:
        body: dict[str, Any] = {"commit": new, "branch": branch, "pusher": os.environ.get("DOCKYARD_PUSHER"),
                                "await_push": True}
        if target:
            body["declared"] = {"target": target, "branch": branch}
        job = None
        try:
            answer = _request("POST", f"/api/v1/apps/{app}/environments/{environment}/deploys", body)
            text = answer.text()
            if answer.status == 202:
                job = int(json.loads(text)["id"])
            if target and answer.status == 202:
                say(f"-----> {environment}: added, as dockyard.yml declares (target {target}, branch {branch})")
            elif target:
                say(f" !     {environment} could not be added as dockyard.yml declares: {text[:300]}")
        except (ApiError, ValueError, KeyError, TypeError):
            pass  # post-receive queues the known environments' deploys
        jobs.append(job)
    try:
        _forget_old_handovers()
        with open(_handover(), "w") as handover:
            handover.write(json.dumps([[*deploy, job] for deploy, job in zip(queued, jobs, strict=True)]))
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
                         {"commit": new, "branch": branch, "pusher": os.environ.get("DOCKYARD_PUSHER")})
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
    """The hook's process (the script git runs): ``main``, its output flushed, then out at once.
    The interpreter's teardown (every module of the checks unloaded, ~10 ms) is skipped: git
    stores the push only once pre-receive has exited, and the deploy job waits for that."""
    gc.disable()  # the checks' imports make many objects and no garbage: no collections while they run
    code = main(hook)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
