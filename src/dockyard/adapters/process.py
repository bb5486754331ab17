"""Child processes dockyard starts and keeps running (the registry, the proxy)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from dockyard.domain.errors import Unavailable

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
_prctl: Callable[..., int] | None
try:  # looked up once here: loading a library between fork and exec can deadlock the child
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:  # runs in the child, before exec
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervised:
    """Starts ``argv``, restarts it when it dies, stops it with the server."""

    def __init__(
        self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.on_restart = on_restart
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self.proc and self.proc.poll() is None:
                return
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = self.log_path.open("ab")
            try:
                self.proc = subprocess.Popen(
                    self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env={**os.environ, **(self.env or {})}, preexec_fn=_die_with_parent,
                )
            except FileNotFoundError:
                raise Unavailable(
                    f"{self.argv[0]} is not installed, so dockyard cannot start its {self.name}",
                    "run `bash scripts/install.sh`, which installs it",
                ) from None
            finally:
                out.close()
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name=f"watch-{self.name}", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            proc = self.proc
            if proc is not None and proc.poll() is not None and not self._stopping.is_set():
                self.restarts += 1
                log.warning("%s exited with %s; restarting (restart #%d)", self.name, proc.returncode, self.restarts)
                if self._stopping.wait(min(5.0, 0.5 * self.restarts)):
                    return
                try:
                    self.start()
                    if self.on_restart:
                        self.on_restart()
                except Exception as exc:
                    log.error("restarting %s: %s", self.name, exc)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        self._stopping.set()
        proc = self.proc
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def recent_output(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return ""
