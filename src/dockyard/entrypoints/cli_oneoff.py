"""`dockyard run` and `dockyard exec`: a command in an environment; its output as it comes, its
exit code as the CLI's own."""

from __future__ import annotations

import base64
import contextlib
import json
import sys
from typing import Annotated, Any

import httpx
import typer

from dockyard.entrypoints.cli_http import EnvOpt, client, endpoint, fail, q

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
    _ended(ended)


def _terminal(app: str, env: str, asked: dict[str, Any]) -> None:
    """From a terminal: the command in a TTY, over a WebSocket; the terminal in raw mode meanwhile
    (keys go to the command as typed), then as it was; exit with the command's code."""
    import os
    import shutil
    import termios
    import threading
    import tty

    from websockets.exceptions import WebSocketException
    from websockets.sync.client import connect

    url, token = endpoint()
    ws_url = url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    size = shutil.get_terminal_size()
    asked = {**asked, "tty": True, "rows": size.lines, "cols": size.columns}
    ended: dict[str, Any] = {}
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        with connect(f"{ws_url}/api/v1/apps/{q(app)}/environments/{q(env)}/runs/attach", max_size=None,
                     additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            ws.send(json.dumps(asked))
            first = json.loads(ws.recv())
            if "error" in first:
                fail(first["error"], first.get("hint", ""))
            tty.setraw(fd)

            def typed() -> None:
                with contextlib.suppress(OSError, WebSocketException):
                    while data := os.read(fd, 1024):
                        ws.send(data)
                    ws.send(json.dumps({"eof": True}))

            threading.Thread(target=typed, daemon=True, name="stdin").start()
            for message in ws:
                if isinstance(message, bytes):
                    out = sys.stderr if message[:1] == b"\x02" else sys.stdout
                    out.buffer.write(message[1:])
                    out.flush()
                else:
                    ended = json.loads(message)
    except (OSError, WebSocketException) as exc:
        fail(f"dockyard's API does not answer ({exc})")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    _ended(ended)


def _ended(ended: dict[str, Any]) -> None:
    """Exit as the command did: its exit code, 124 past its deadline, 1 with dockyard's error."""
    if "error" in ended:
        fail(ended["error"], ended.get("hint") or f"see: dockyard jobs show {ended.get('job')}")
    if ended.get("timed_out"):
        typer.secho(f"dockyard: stopped after its deadline (job {ended.get('job')})", fg="red", err=True)
        raise typer.Exit(TIMED_OUT)
    if not ended:
        fail("the answer ended before the command did", "see: dockyard jobs --app APP")
    raise typer.Exit(ended["exit"] if isinstance(ended.get("exit"), int) else 1)


def _interactive(no_tty: bool) -> bool:
    return not no_tty and sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()


NoTty = Annotated[bool, typer.Option("--no-tty", "-T", help="no terminal even when run from one (as docker exec -T)")]


def run(
    app: str,
    command: Command,
    env: EnvOpt = "production",
    service: Annotated[str, typer.Option(help="a service of the live release (default: its first)")] = "",
    image: Annotated[str, typer.Option(help="an image the release built that runs as no service (e.g. api-tools); "
                                           "with --service, that service's configuration")]
    = "",
    timeout: Timeout = 3600.0,
    no_tty: NoTty = False,
) -> None:
    """Run a command in a one-off container of an environment's live release, then remove it.

    The container is a service's (its image, the environment's variables, secrets, networks and
    volumes), or runs an image the release built (--image; with --service too, that service's
    configuration). Input piped in is written to the
    command; its output comes back as it is written; this exits with the command's exit code.
    Each run is recorded as a job (dockyard jobs): who, the command (secret values redacted),
    the exit code and the output.

    From a terminal, the command runs in one (a shell works: dockyard run shop -- sh).

    dockyard run shop --env recette --image api-tools -- /tools/restore.sh /data/export.json"""
    if _interactive(no_tty):
        _terminal(app, env, {"command": command, "service": service, "image": image, "timeout": timeout})
    _attached(f"/api/v1/apps/{q(app)}/environments/{q(env)}/runs",
              {"command": command, "service": service, "image": image, "stdin": _stdin(), "timeout": timeout})


def exec_cmd(
    app: str,
    service: str,
    command: Command,
    env: EnvOpt = "production",
    replica: Annotated[int, typer.Option(help="which replica's container")] = 0,
    timeout: Timeout = 3600.0,
    no_tty: NoTty = False,
) -> None:
    """Run a command in a running container of SERVICE (as `docker exec`), recorded as a job.

    From a terminal, the command runs in one. dockyard exec shop --env recette api -- ps aux"""
    if _interactive(no_tty):
        _terminal(app, env, {"command": command, "exec": service, "replica": replica, "timeout": timeout})
    _attached(f"/api/v1/apps/{q(app)}/environments/{q(env)}/services/{q(service)}/exec",
              {"command": command, "replica": replica, "stdin": _stdin(), "timeout": timeout})
