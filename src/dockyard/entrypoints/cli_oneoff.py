"""`dockyard run` and `dockyard exec`: a command in an environment; its output as it comes, its
exit code as the CLI's own."""

from __future__ import annotations

import base64
import json
import sys
from typing import Annotated, Any

import httpx
import typer

from dockyard.entrypoints.cli_http import EnvOpt, client, fail, q

MAX_STDIN = 16 * 1024 * 1024
TIMED_OUT = 124  # as timeout(1) exits
Command = Annotated[list[str], typer.Argument(help="the command and its arguments, after --", show_default=False)]
Timeout = Annotated[float, typer.Option(help="seconds; then it is stopped, and this exits 124")]


def _stdin() -> str | None:
    """The input piped in (none from a terminal), base64, within MAX_STDIN."""
    if sys.stdin is None or sys.stdin.isatty():
        return None
    data = sys.stdin.buffer.read(MAX_STDIN + 1)
    if len(data) > MAX_STDIN:
        fail(f"the input is larger than {MAX_STDIN // 1024 // 1024} MiB", "put large files in a volume or the image")
    return base64.b64encode(data).decode()


def _attached(path: str, body: dict[str, Any]) -> None:
    """POST, then copy the streamed output to stdout and stderr; exit with the command's code."""
    ended: dict[str, Any] = {}
    try:
        with client() as c, c.stream("POST", path, json=body) as r:
            if r.status_code >= 400:
                r.read()
                answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                fail(answer.get("error") or r.text, answer.get("hint", ""))
            for line in r.iter_lines():
                if not line:
                    continue
                item = json.loads(line)
                if "stream" in item:
                    out = sys.stderr if item["stream"] == "stderr" else sys.stdout
                    out.buffer.write(base64.b64decode(item["data"]))
                    out.flush()
                elif "exit" in item or "error" in item:
                    ended = item
    except httpx.HTTPError as exc:
        fail(f"dockyard's API does not answer ({exc})")
    if "error" in ended:
        fail(ended["error"], ended.get("hint") or f"see: dockyard jobs show {ended.get('job')}")
    if ended.get("timed_out"):
        typer.secho(f"dockyard: stopped after its deadline (job {ended.get('job')})", fg="red", err=True)
        raise typer.Exit(TIMED_OUT)
    if not ended:
        fail("the answer ended before the command did", "see: dockyard jobs --app APP")
    raise typer.Exit(ended["exit"] if isinstance(ended.get("exit"), int) else 1)


def run(
    app: str,
    command: Command,
    env: EnvOpt = "production",
    service: Annotated[str, typer.Option(help="a service of the live release (default: its first)")] = "",
    image: Annotated[str, typer.Option(help="or an image the release built that runs as no service (e.g. api-tools)")]
    = "",
    timeout: Timeout = 3600.0,
) -> None:
    """Run a command in a one-off container of an environment's live release, then remove it.

    The container is a service's (its image, the environment's variables, secrets, networks and
    volumes), or runs an image the release built (--image). Input piped in is written to the
    command; its output comes back as it is written; this exits with the command's exit code.
    Each run is recorded as a job (dockyard jobs): who, the command (secret values redacted),
    the exit code and the output.

    dockyard run shop --env recette --image api-tools -- /tools/restore.sh /data/export.json"""
    _attached(f"/api/v1/apps/{q(app)}/environments/{q(env)}/runs",
              {"command": command, "service": service, "image": image, "stdin": _stdin(), "timeout": timeout})


def exec_cmd(
    app: str,
    service: str,
    command: Command,
    env: EnvOpt = "production",
    replica: Annotated[int, typer.Option(help="which replica's container")] = 0,
    timeout: Timeout = 3600.0,
) -> None:
    """Run a command in a running container of SERVICE (as `docker exec`), recorded as a job.

    dockyard exec shop --env recette api -- ps aux"""
    _attached(f"/api/v1/apps/{q(app)}/environments/{q(env)}/services/{q(service)}/exec",
              {"command": command, "replica": replica, "stdin": _stdin(), "timeout": timeout})
