"""`dockyard run` and `dockyard exec`: a command in an environment, its output streamed back as
JSON lines (``{"stream": "stdout", "data": BASE64}`` as it comes, then ``{"exit": CODE, ...}``),
recorded as a job (services/oneoff.py)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from dockyard.domain.access import Action, Principal
from dockyard.domain.errors import DockyardError, Forbidden, Unauthorized
from dockyard.entrypoints.deps import Origin, PlatformDep, authorize, require
from dockyard.services.events import ACCESS_DENIED, Event
from dockyard.services.oneoff import MAX_TIMEOUT, OneOffs, Prepared

if TYPE_CHECKING:
    from dockyard.bootstrap import Platform

router = APIRouter(prefix="/api/v1/apps/{name}/environments/{env}", tags=["run"])
MAX_STDIN_BASE64 = 24 * 1024 * 1024  # 18 MiB of input
Runner = Annotated[Principal, require(Action.DEPLOY)]  # a command can change an environment's data


class CommandIn(BaseModel):
    command: list[str] = Field(min_length=1, max_length=4096, examples=[["sh", "-c", "ls /data"]])
    stdin: str | None = Field(None, max_length=MAX_STDIN_BASE64,
                              description="the command's input, base64; written, then closed (none: no input)")
    timeout: float = Field(3600.0, gt=0, le=MAX_TIMEOUT, description="seconds: then it is stopped and reported")


class RunIn(CommandIn):
    service: str = Field("", max_length=64, description="a service of the live release (default: its first)")
    image: str = Field("", max_length=255, description="an image the release built that runs as no service (its "
                                                        "Dockerfile header's name, or that name's last part); with "
                                                        "`service`, that service's configuration")


class ExecIn(CommandIn):
    replica: int = Field(0, ge=0, le=1000)


def _input(body: CommandIn) -> bytes | None:
    if body.stdin is None:
        return None
    try:
        return base64.b64decode(body.stdin, validate=True)
    except (binascii.Error, ValueError):
        raise DockyardError("stdin is not base64", "send the command's input base64-encoded") from None


MAX_PENDING_OUTPUT = 64 * 1024 * 1024  # bytes the caller has not read yet: beyond, output is dropped, never waited on


def _streamed(oneoffs: OneOffs, prepared: Prepared, stdin: bytes | None) -> StreamingResponse:
    """The run in a thread of its own; its output, then how it ended, as JSON lines. The run never
    waits for the caller: output it has not read beyond MAX_PENDING_OUTPUT is dropped (a caller
    that went reads nothing; the job's log keeps its start)."""
    lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
    pending = [0]
    guard = threading.Lock()

    def output(stream: str, data: bytes) -> None:
        with guard:
            if pending[0] + len(data) > MAX_PENDING_OUTPUT:
                return
            pending[0] += len(data)
        lines.put({"stream": stream, "data": base64.b64encode(data).decode(), "size": len(data)})

    def work() -> None:
        try:
            result = oneoffs.run(prepared, stdin, output)
            lines.put({"exit": result.exit_code, "timed_out": result.timed_out, "job": prepared.job.id})
        except DockyardError as exc:
            lines.put({"error": exc.message, "hint": exc.hint, "job": prepared.job.id})
        except Exception as exc:  # the job records it too
            lines.put({"error": repr(exc), "job": prepared.job.id})
        finally:
            lines.put(None)

    threading.Thread(target=work, daemon=True, name=f"{prepared.job.kind}-{prepared.job.id}").start()

    def body() -> Iterator[bytes]:
        yield (json.dumps({"job": prepared.job.id}) + "\n").encode()
        while (line := lines.get()) is not None:
            with guard:
                pending[0] -= int(line.pop("size", 0))
            yield (json.dumps(line) + "\n").encode()

    return StreamingResponse(body(), media_type="application/x-ndjson",
                             headers={"X-Dockyard-Job": str(prepared.job.id)})


@router.post("/runs", response_class=StreamingResponse, responses={200: {"content": {"application/x-ndjson": {}}}})
def run(name: str, env: str, body: RunIn, p: PlatformDep, who: Runner, source: Origin) -> StreamingResponse:
    """Run a command in a one-off container of the environment's live release (a service's image,
    variables, secrets, networks and volumes; or an image it built); it is removed afterwards.
    The answer streams the output as JSON lines, `{"stream": "stdout"|"stderr", "data": BASE64}`,
    and ends with `{"exit": CODE, "timed_out": BOOL, "job": ID}` (or `{"error": ...}`)."""
    stdin = _input(body)
    prepared = p.oneoffs.prepare_run(name, env, who.name, body.command, body.service, body.image, body.timeout, source)
    return _streamed(p.oneoffs, prepared, stdin)


@router.post("/services/{service}/exec", response_class=StreamingResponse,
             responses={200: {"content": {"application/x-ndjson": {}}}})
def exec_in(name: str, env: str, service: str, body: ExecIn, p: PlatformDep, who: Runner,
            source: Origin) -> StreamingResponse:
    """Run a command in a running container of a service (`replica`, default 0); its output is
    streamed as for `/runs`."""
    stdin = _input(body)
    prepared = p.oneoffs.prepare_exec(name, env, who.name, service, body.command, body.replica, body.timeout, source)
    return _streamed(p.oneoffs, prepared, stdin)


# -- with a terminal: a WebSocket -------------------------------------------------------------------
# The client sends one JSON text message first: {"command": [...], "service"|"image" (a run) or
# "exec": SERVICE with "replica", "timeout", "tty": true, "rows", "cols"}. The server answers
# {"job": ID} (or {"error", "hint"} and closes), then sends the output as binary messages whose
# first byte is the stream (1 stdout, 2 stderr), and last {"exit": CODE, "timed_out": BOOL}. The
# client sends its input as binary messages, and {"eof": true} when it ends.


class AttachIn(BaseModel):
    command: list[str] = Field(min_length=1, max_length=4096)
    service: str = Field("", max_length=64)
    image: str = Field("", max_length=255)
    exec: str = Field("", max_length=64, description="run in a running container of this service instead")
    replica: int = Field(0, ge=0, le=1000)
    timeout: float = Field(3600.0, gt=0, le=MAX_TIMEOUT)
    tty: bool = True
    rows: int = Field(24, ge=1, le=1000)
    cols: int = Field(80, ge=1, le=1000)


@router.websocket("/runs/attach")
async def attach(websocket: WebSocket, name: str, env: str) -> None:
    """`dockyard run` and `dockyard exec` from a terminal: input, output and the exit code over a
    WebSocket (the same checks, job and record as `POST /runs`)."""
    p: Platform = websocket.app.state.platform
    await websocket.accept()
    source = websocket.client.host if websocket.client else "unknown"
    try:
        who = await run_in_threadpool(_allowed, p, websocket.headers.get("authorization", ""), name, env, source)
        asked = AttachIn.model_validate(await websocket.receive_json())
        if asked.exec:
            prepared = await run_in_threadpool(p.oneoffs.prepare_exec, name, env, who.name, asked.exec, asked.command,
                                               asked.replica, asked.timeout, source)
        else:
            prepared = await run_in_threadpool(p.oneoffs.prepare_run, name, env, who.name, asked.command,
                                               asked.service, asked.image, asked.timeout, source)
    except (DockyardError, ValidationError, ValueError, KeyError) as exc:
        message = exc.message if isinstance(exc, DockyardError) else f"the first message is not a command: {exc}"[:500]
        await websocket.send_json({"error": message, "hint": exc.hint if isinstance(exc, DockyardError) else ""})
        await websocket.close()
        return
    except WebSocketDisconnect:
        return
    try:
        await websocket.send_json({"job": prepared.job.id})
    except (WebSocketDisconnect, RuntimeError):
        await run_in_threadpool(p.oneoffs.abandon, prepared)
        return
    await _relay(websocket, p.oneoffs, prepared, asked)


def _allowed(p: Platform, authorization: str, app: str, env: str, source: str) -> Principal:
    """The caller, once allowed to run a command there (as `require(Action.DEPLOY)` checks a request)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing token", "send 'Authorization: Bearer <token>' (set DOCKYARD_TOKEN)")
    who = p.access.authenticate(token.strip())
    protected = p.environments.is_protected(app, env)
    try:
        authorize(who, Action.DEPLOY, app, protected)
    except Forbidden as exc:
        p.events.publish(Event(ACCESS_DENIED, who.name, source, app, env,
                               {"action": Action.DEPLOY.value, "reason": exc.message, "request": "run (terminal)"}))
        raise
    return who


async def _relay(websocket: WebSocket, oneoffs: OneOffs, prepared: Prepared, asked: AttachIn) -> None:
    loop = asyncio.get_running_loop()
    out: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    given: queue.Queue[bytes] = queue.Queue()

    def output(stream: str, data: bytes) -> None:
        loop.call_soon_threadsafe(out.put_nowait, ("data", (b"\x02" if stream == "stderr" else b"\x01") + data))

    def work() -> None:
        try:
            result = oneoffs.run(prepared, given.get, output, tty=asked.tty, size=(asked.rows, asked.cols))
            ended: dict[str, Any] = {"exit": result.exit_code, "timed_out": result.timed_out, "job": prepared.job.id}
        except DockyardError as exc:
            ended = {"error": exc.message, "hint": exc.hint, "job": prepared.job.id}
        except Exception as exc:  # the job records it too
            ended = {"error": repr(exc), "job": prepared.job.id}
        loop.call_soon_threadsafe(out.put_nowait, ("end", ended))

    async def receive() -> None:
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if message.get("bytes"):
                    given.put(message["bytes"])
                elif message.get("text") and json.loads(message["text"]).get("eof"):
                    break
        except (WebSocketDisconnect, ValueError, RuntimeError):
            pass
        finally:
            given.put(b"")  # the command's input ends

    threading.Thread(target=work, daemon=True, name=f"{prepared.job.kind}-{prepared.job.id}").start()
    receiving = asyncio.create_task(receive())
    try:
        while True:
            kind, item = await out.get()
            if kind == "end":
                await websocket.send_json(item)
                break
            await websocket.send_bytes(item)
        await websocket.close()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        receiving.cancel()
        given.put(b"")
