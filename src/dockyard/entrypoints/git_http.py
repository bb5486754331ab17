"""Git over smart HTTP: the real ``git http-backend`` as a CGI behind dockyard's token auth.

The push's hooks (see ``hooks.py``) talk back to the API, and what they print streams to the
pusher's terminal as ``remote:`` lines, like Heroku or Dokku.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from dockyard.adapters.git import safe_git_env
from dockyard.config import Settings
from dockyard.domain import access
from dockyard.domain.access import Action
from dockyard.domain.errors import DockyardError
from dockyard.services.events import ACCESS_DENIED, Event

if TYPE_CHECKING:
    from dockyard.bootstrap import Platform

SERVICES = ("git-upload-pack", "git-receive-pack")


def _basic_password(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None


def mount(api: FastAPI, settings: Settings) -> None:
    # Up to twice the limit, git itself refuses the pack with a message naming the limit;
    # beyond, the request is cut off with HTTP 413 before it fills the disk.
    hard_limit = 2 * settings.max_push_bytes + 1024 * 1024
    # The hooks call the API where it listens (loopback when it listens everywhere).
    hook_host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host
    if ":" in hook_host:
        hook_host = f"[{hook_host}]"

    @api.api_route("/git/{repo}/{path:path}", methods=["GET", "POST"], include_in_schema=True, tags=["git"])
    async def git(repo: str, path: str, request: Request) -> Response:
        """Smart HTTP git endpoint: `git push http://HOST/git/APP.git main` (password: a token); an app's
        other repos (dockyard repos) at `/git/APP/NAME.git`."""
        p: Platform = request.app.state.platform
        unauthorized = PlainTextResponse(
            "dockyard: a token is needed: use it as the password (any user name)\n",
            status_code=401, headers={"WWW-Authenticate": 'Basic realm="dockyard"'},
        )
        token = _basic_password(request.headers.get("authorization"))
        if token is None:
            return unauthorized
        pusher = await run_in_threadpool(p.access.verify, token)
        if pusher is None:
            return unauthorized
        own, _, rest = path.partition("/")  # /git/APP/NAME.git/...: another repo of the app
        named = "" if repo.endswith(".git") or not own.endswith(".git") else own[:-4]
        if not repo.endswith(".git") and not named:
            return PlainTextResponse("dockyard: repositories end in .git\n", status_code=404)
        try:
            app = await run_in_threadpool(p.apps.get, (named and repo) or repo[:-4])
            other = await run_in_threadpool(p.app_repos.find, app.name, named) if named else None
        except DockyardError as exc:
            return PlainTextResponse(f"dockyard: {exc}\n", status_code=exc.status)
        if named:
            path = rest
        where = f"/{app.name}/{other.name}.git" if other is not None else f"/{app.name}.git"
        service = request.query_params.get("service") if path == "info/refs" else path
        if service not in SERVICES or path not in ("info/refs", *SERVICES):
            return PlainTextResponse("dockyard: only git's smart HTTP protocol is served\n", status_code=404)
        action = Action.PUSH if service == "git-receive-pack" else Action.READ
        if not access.allowed(pusher, action, app.name):
            message, hint = access.refusal(pusher, action)
            await run_in_threadpool(p.events.publish, Event(  # audited, as the API's denials are
                ACCESS_DENIED, pusher.name, request.client.host if request.client else "unknown", app.name,
                detail={"action": action.value, "reason": message, "request": f"git {service}"}))
            return PlainTextResponse(f"dockyard: {message}\n  hint: {hint}\n", status_code=403)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > hard_limit:
            return PlainTextResponse(
                f"dockyard: push too large ({int(length)} bytes; the limit is {settings.max_push_bytes})\n",
                status_code=413,
            )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "GIT_PROJECT_ROOT": str(settings.repos_dir),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"{where}/{path}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.url.query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "REMOTE_USER": pusher.name,
            "REMOTE_ADDR": request.client.host if request.client else "",
            "GIT_HTTP_MAX_REQUEST_BUFFER": str(hard_limit),
            "DOCKYARD_URL": f"http://{hook_host}:{settings.api_port}",
            "DOCKYARD_APP": app.name,
            "DOCKYARD_PUSHER": pusher.name,
            "DOCKYARD_REPO": other.name if other is not None else "",
        }
        if path == "git-receive-pack":  # for post-receive, when pre-receive could not hand its deploys over
            env["DOCKYARD_DEPLOYS"] = json.dumps(p.apps.branch_targets(app))
        env = safe_git_env(env)  # no system or global git configuration for the push
        for header, var in (("content-encoding", "HTTP_CONTENT_ENCODING"), ("git-protocol", "GIT_PROTOCOL")):
            if header in request.headers:
                env[var] = request.headers[header]
        # The whole request is read first (to a temporary file, within the size limit): the body
        # then reaches git intact whatever the client's transfer encoding.
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the subprocess, closed below
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > hard_limit:
                spool.close()
                return PlainTextResponse(
                    f"dockyard: push too large (over {settings.max_push_bytes} bytes)\n", status_code=413
                )
            spool.write(chunk)
        spool.seek(0)
        env["CONTENT_LENGTH"] = str(total)
        # The push's hooks call the API with a token good for this app and this pusher only,
        # revoked when the request ends (or expiring, if it never ends cleanly).
        hook_token = p.access.mint_hook_token(app.name, pusher.name, pusher.role) if path == "git-receive-pack" else ""
        if hook_token:
            env["DOCKYARD_HOOK_TOKEN"] = hook_token
        try:
            proc = await asyncio.create_subprocess_exec(
                "git", "http-backend", env=env, stdin=spool, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
            spool.close()
            assert proc.stdout is not None
            stdout = proc.stdout
            status, headers = 200, {}
            while True:
                line = await stdout.readline()
                if not line or line in (b"\r\n", b"\n"):
                    break
                key, _, value = line.decode("latin-1").partition(":")
                if key.lower() == "status":
                    status = int(value.split()[0])
                else:
                    headers[key.strip()] = value.strip()
        except BaseException:
            spool.close()
            p.access.revoke_hook_token(hook_token)
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await stdout.read(65536):
                    yield chunk
            finally:
                if proc.returncode is None:
                    try:
                        await asyncio.wait_for(proc.wait(), timeout=5)
                    except TimeoutError:
                        proc.kill()
                p.access.revoke_hook_token(hook_token)

        return StreamingResponse(body(), status_code=status, headers=headers)
