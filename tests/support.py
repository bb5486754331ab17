"""Helpers that drive real parts: a `dockyard server` (which starts its registry and Caddy)
on a real Docker engine, driven with the real `git` client and the `dockyard` CLI."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import httpx

BIN = Path(sys.executable).parent
BASE_IMAGE = "dockyard/busybox:local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Server:
    """A real `dockyard server` in a subprocess, with its own home and ports."""

    def __init__(self, home: Path, **settings: str) -> None:
        self.home = home
        self.api_port = free_port()
        self.proxy_port = free_port()
        self.registry_port = free_port()
        self.resolver_port = free_port()
        self.env = {
            **os.environ,
            "DOCKYARD_HOME": str(home),
            "DOCKYARD_API_PORT": str(self.api_port),
            "DOCKYARD_PROXY_PORT": str(self.proxy_port),
            "DOCKYARD_REGISTRY_PORT": str(self.registry_port),
            "DOCKYARD_RESOLVER_PORT": str(self.resolver_port),
            "DOCKYARD_NAME_PREFIX": f"dytest{self.api_port}",
            "DOCKYARD_ADMIN_TOKEN_FILE": str(home / "admin-token"),
            "DOCKYARD_READY_TIMEOUT": "20",
            "DOCKYARD_MONITOR_SECONDS": "1",  # each deploy watches its new containers this long (5 s by default)
            **settings,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.installation = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        log = (self.home / "server.log").open("ab")
        self.proc = subprocess.Popen([str(BIN / "dockyard"), "server"], env=self.env, stdout=log, stderr=log)
        wait_until(self._healthy, 60, f"dockyard server on {self.url} (log: {self.home / 'server.log'})")
        self.token = (self.home / "admin-token").read_text().strip()
        self.installation = httpx.get(f"{self.url}/api/v1/health").json()["installation"]
        self.env["DOCKYARD_URL"] = self.url
        self.env["DOCKYARD_TOKEN"] = self.token

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"dockyard server exited: {(self.home / 'server.log').read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # the proxy and the registry are containers of their own: they go on serving

    def down(self) -> subprocess.CompletedProcess[str]:
        """`dockyard server down`: the server, the proxy and the registry stop."""
        out = self.cli("server", "down")
        wait_until(lambda: not _port_open(self.proxy_port) and not _port_open(self.registry_port), 20,
                   "the proxy and registry to stop")
        return out

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- clients ------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs) -> httpx.Response:
        return httpx.request(method, f"{self.url}{path}", headers={"Authorization": f"Bearer {self.token}"},
                             timeout=60, **kwargs)

    def cli(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN / "dockyard"), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def remote(self, app: str) -> str:
        return f"http://dockyard:{self.token}@127.0.0.1:{self.api_port}/git/{app}.git"

    def push(self, repo: Path, app: str, refspec: str = "main", *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "push", *extra, self.remote(app), refspec], cwd=repo, capture_output=True,
                              text=True, timeout=600)

    def get(self, host: str, path: str = "/") -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.proxy_port}{path}", headers={"Host": host}, timeout=5)

    def body(self, host: str, path: str = "/") -> str:
        try:
            r = self.get(host, path)
        except httpx.HTTPError as exc:
            return f"<{exc!r}>"
        return r.text if r.status_code == 200 else f"<{r.status_code}>"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def sweep(engine: docker.DockerClient, installation: str) -> None:
    """Remove whatever a test server left behind in the engine, found by its labels."""
    label = f"dockyard.installation={installation}"
    for c in engine.containers.list(all=True, filters={"label": label}):
        c.remove(force=True)
    for n in engine.networks.list(filters={"label": label}):
        n.remove()
    for v in engine.volumes.list(filters={"label": label}):
        v.remove(force=True)


def remove_images(engine: docker.DockerClient, prefix: str) -> None:
    """Remove the images pushed to a test registry (children before their bases)."""
    for _ in range(5):
        left = [i for i in engine.images.list() if any(t.startswith(prefix) for t in i.tags)]
        if not left:
            return
        for image in left:
            try:
                engine.images.remove(image.id, force=True)
            except docker.errors.APIError:
                continue


@contextlib.contextmanager
def own_server(home: Path, engine: docker.DockerClient, **settings: str) -> Iterator[Server]:
    """A server of a test module's own (settings the shared one does not have, or one a test
    kills): started, then stopped, its containers, networks and pushed images removed."""
    srv = Server(home, **settings)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        sweep(engine, srv.installation)
        remove_images(engine, f"127.0.0.1:{srv.registry_port}/")


def make_repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True)
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    subprocess.run(["git", "add", "-A"], cwd=path, check=True)
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "-q",
                    "--allow-empty", "-m", "change"], cwd=path, check=True)
    return path


def head(repo: Path) -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def static_site(text: str, version: str | None = "1.0", name: str = "dockyard.test/demo/site") -> dict[str, str]:
    header = f"# {name}\n#\n# VERSION {version}\n" if version else ""
    return {
        "Dockerfile": header + f"FROM {BASE_IMAGE}\nCOPY public /www\nEXPOSE 8000\n"
        'CMD ["httpd", "-f", "-v", "-p", "8000", "-h", "/www"]\n',
        "public/index.html": text + "\n",
    }


@contextlib.contextmanager
def slow_push(server: Server, app: str, repo_dir: Path, text: str, seconds: int = 3) -> Iterator[None]:
    """Push a site whose build takes ``seconds``; the body runs once its deploy job is running,
    and the push is waited for on the way out."""
    files = static_site(text)
    files["Dockerfile"] = files["Dockerfile"].replace(
        "COPY public /www", f"RUN sleep {seconds} && echo {uuid.uuid4().hex} > /slow\nCOPY public /www"
    )
    repo = make_repo(repo_dir, files)
    push = subprocess.Popen(["git", "push", server.remote(app), "main"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: any(j["status"] == "running" for j in jobs_of(server, app)), 30, "the deploy to run")
        yield
    finally:
        push.communicate(timeout=120)


def jobs_of(server: Server, app: str) -> list[dict]:
    return server.api("GET", "/api/v1/jobs", params={"app": app}).json()




def git(repo: Path, *args: str) -> str:
    """A git command in ``repo`` (as a user runs it), its output."""
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def unlocated(message: str) -> str:
    """A compose file's refusal without its file and line (``docker-compose.yml line 7: PATH: ...``
    as ``compose file: PATH: ...``), for tests that check the path and the words."""
    return re.sub(r"(?:compose file|[\w.-]+\.ya?ml) line \d+: ", "compose file: ", message)


# Why a request may be sent again: the proxy closed or reset it before any answer.
_UNANSWERED = ("without sending a response", "Connection reset")


def get_resending(client: httpx.Client, path: str = "/") -> tuple[httpx.Response, str]:
    """GET ``path``; a request the proxy never received is sent again once, as browsers and curl
    do for a kept-alive connection (RFC 9112, 9.3.1): whenever Caddy's configuration changes (any
    release of any app), it closes its idle connections and, on Linux, swaps its listening sockets
    (SO_REUSEPORT), resetting the connections queued on the old one. Returns the answer and, when
    it was sent twice, why ("" otherwise). Any other error, or a second failure, raises."""
    try:
        return client.get(path), ""
    except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError) as exc:
        if not any(why in str(exc) for why in _UNANSWERED):
            raise
        return client.get(path), repr(exc)


@dataclass
class Load:
    """A few clients calling one host through the proxy, a request every ``pause`` s each:
    bounded, so the release itself is not starved. With ``resend``, a request the proxy never
    received (reset by a reload of its configuration, which adding or changing a route's hosts
    makes) is sent again once (tests.support.get_resending); a failure is then a wrong answer, a
    5xx, or a second failure. Without, every error is a failure."""

    server: Server
    host: str
    clients: int = 3
    resend: bool = False
    pause: float = 0.02
    answers: Counter[str] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)  # never received by the proxy: sent again once
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{self.server.proxy_port}", headers={"Host": self.host},
                          timeout=5) as client:
            while not self.stop.is_set():
                try:
                    r, resent = get_resending(client) if self.resend else (client.get("/"), "")
                    if resent:
                        self.resent.append(resent)
                    if r.status_code == 200:
                        self.answers[r.text.strip()] += 1
                    else:
                        self.failed.append(f"HTTP {r.status_code} {r.text[:80]!r}")
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))
                time.sleep(self.pause)

    def __enter__(self) -> Load:
        for _ in range(self.clients):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
