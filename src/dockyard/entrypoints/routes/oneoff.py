"""`dockyard run` and `dockyard exec`: a command in an environment, its output streamed back as
JSON lines (``{"stream": "stdout", "data": BASE64}`` as it comes, then ``{"exit": CODE, ...}``),
recorded as a job (services/oneoff.py)."""

from __future__ import annotations

import base64
import binascii
import json
import queue
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from dockyard.domain.access import Action, Principal
from dockyard.domain.errors import DockyardError
from dockyard.entrypoints.deps import Origin, PlatformDep, require
from dockyard.services.oneoff import MAX_TIMEOUT, OneOffs, Prepared

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
    image: str = Field("", max_length=255, description="or an image the release built that runs as no service "
                                                        "(its Dockerfile header's name, or that name's last part)")


class ExecIn(CommandIn):
    replica: int = Field(0, ge=0, le=1000)


def _input(body: CommandIn) -> bytes | None:
    if body.stdin is None:
        return None
    try:
        return base64.b64decode(body.stdin, validate=True)
    except (binascii.Error, ValueError):
        raise DockyardError("stdin is not base64", "send the command's input base64-encoded") from None


def _streamed(oneoffs: OneOffs, prepared: Prepared, stdin: bytes | None) -> StreamingResponse:
    """The run in a thread of its own; its output, then how it ended, as JSON lines."""
    lines: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=256)

    def output(stream: str, data: bytes) -> None:
        lines.put({"stream": stream, "data": base64.b64encode(data).decode()})

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
