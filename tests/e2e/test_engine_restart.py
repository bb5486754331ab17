"""A Docker engine restart (an upgrade, a crash) does not stop apps: an engine that dockyard
starts runs with live-restore, and the server's view of the engine (its event stream) comes
back by itself. Runs against a second, private dockerd, so the rest of the suite is untouched."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.e2e.test_data_plane import Load
from tests.support import BASE_IMAGE, Server, make_repo, static_site, sweep, wait_until


class PrivateEngine:
    """A dockerd of its own (data root, exec root, socket, default bridge), in the host's network
    namespace, without iptables, so it cannot disturb the suite's engine. (With `--bridge=none`
    dockerd deletes `docker0`, the other engine's default bridge: it gets a bridge of its own.)"""

    BRIDGE = "dytestbr0"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if subprocess.run(["ip", "link", "show", self.BRIDGE], capture_output=True).returncode != 0:
            for cmd in (["ip", "link", "add", self.BRIDGE, "type", "bridge"],
                        ["ip", "addr", "add", "10.219.255.1/24", "dev", self.BRIDGE],
                        ["ip", "link", "set", self.BRIDGE, "up"]):
                subprocess.run(cmd, check=True)
        # a config file of its own: the host's /etc/docker/daemon.json (which setup.sh gives
        # live-restore) would otherwise be read too, and dockerd refuses a key set twice
        config = self.root / "daemon.json"
        config.write_text(json.dumps({"live-restore": True}) + "\n")
        args = ["dockerd", "--config-file", str(config), "--data-root", str(self.root / "data"),
                "--exec-root", str(self.root / "exec"), "--pidfile", str(self.root / "dockerd.pid"),
                "-H", self.host, "--iptables=false", "--ip-masq=false", f"--bridge={self.BRIDGE}"]
        with (self.root / "dockerd.log").open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(self._answers, 60, "the private dockerd")
        except AssertionError as e:
            log = (self.root / "dockerd.log").read_text(errors="replace").splitlines()[-15:]
            raise AssertionError(f"{e}; its log ends with:\n" + "\n".join(log)) from None

    def _answers(self) -> bool:
        try:
            client = docker.DockerClient(base_url=self.host, timeout=2)
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        except docker.errors.DockerException:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.host)


@pytest.fixture(scope="module")
def private_engine(engine: docker.DockerClient) -> Iterator[PrivateEngine]:
    assert subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).returncode == 0
    root = Path(f"/tmp/dytest-engine-{os.getpid()}")  # short: unix socket paths are limited
    root.mkdir(parents=True, exist_ok=True)
    private = PrivateEngine(root)
    try:
        private.start()
        client = private.client()
        client.images.load(b"".join(engine.images.get(BASE_IMAGE).save(named=True)))
        client.close()
        yield private
    finally:
        if private.proc and private.proc.poll() is None:
            client = private.client()
            for c in client.containers.list(all=True):
                c.remove(force=True)
            client.close()
        private.stop()
        for mount in sorted((line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                             if line.split()[1].startswith(str(root))), reverse=True):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", PrivateEngine.BRIDGE], check=False)
        # the suite's engine keeps its default bridge (builds' RUN steps need it)
        assert subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).returncode == 0


@contextlib.contextmanager
def private_server(engine: PrivateEngine, home: Path, app: str) -> Iterator[tuple[Server, docker.DockerClient]]:
    """A dockyard server on the private engine, and a client of that engine; on the way out the
    app is deleted, the server stopped and what it left removed."""
    srv = Server(home, DOCKYARD_DOCKER_HOST=engine.host)
    srv.start()
    client = engine.client()
    try:
        yield srv, client
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.api("DELETE", f"/api/v1/apps/{app}")
        srv.stop()
        sweep(client, srv.installation)
        client.close()


def test_apps_keep_serving_while_the_engine_restarts_and_routes_follow_after(
    private_engine: PrivateEngine, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    with private_server(private_engine, tmp_path_factory.mktemp("engine-restart-home"), "steady") as (srv, client):
        srv.cli("apps", "create", "steady")
        push = srv.push(make_repo(tmp_path / "src", static_site("steady")), "steady")
        assert push.returncode == 0 and srv.body("steady.localhost") == "steady\n", push.stderr
        assert client.info()["LiveRestoreEnabled"]
        with Load(srv, "steady.localhost") as load:
            load.during("before", 1.0)
            load.step = "engine restart"
            started = time.monotonic()
            private_engine.stop()
            private_engine.start()
            load.during("engine restart", 0.5)
            restart = time.monotonic() - started
            load.during("after", 1.0)
        assert sum(load.failed.values()) == 0, (dict(load.failed), load.errors[:5])
        assert all(load.ok[s] > 0 for s in ("before", "engine restart", "after")), dict(load.ok)
        print(f"\nengine restart took {restart:.1f}s; requests ok {dict(load.ok)}, failed {dict(load.failed)}")

        # the server's event stream came back with the engine: a container that Docker starts
        # again under another address is routed to at once
        web = client.containers.list(filters={"label": ["dockyard.app=steady"]})[0]
        network = next(iter(web.attrs["NetworkSettings"]["Networks"]))
        web.stop(timeout=1)
        squatter = client.containers.run(BASE_IMAGE, ["sleep", "60"], detach=True, network=network)
        web.start()
        wait_until(lambda: srv.body("steady.localhost") == "steady\n", 10, "the route to follow the new address")
        squatter.remove(force=True)


def slow_site(text: str) -> dict[str, str]:
    """A site whose container answers 3 s after it starts: a release waits that long for it."""
    files = static_site(text)
    files["Dockerfile"] = files["Dockerfile"].replace(
        'CMD ["httpd", "-f", "-v", "-p", "8000", "-h", "/www"]', 'CMD ["sh", "-c", "sleep 3; exec httpd -f -p 8000 -h /www"]')
    return files


def test_an_engine_restart_in_the_middle_of_a_release_leaves_the_app_serving_and_no_orphan(
    private_engine: PrivateEngine, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from tests.support import Load as StrictLoad

    with private_server(private_engine, tmp_path_factory.mktemp("engine-midway-home"), "midway") as (srv, client):
        def containers() -> dict[str, int]:
            found = client.api.containers(all=True, filters={"label": "dockyard.app=midway"})
            return {c["Names"][0]: int(c["Labels"]["dockyard.release"]) for c in found}

        srv.cli("apps", "create", "midway")
        repo = make_repo(tmp_path / "src", slow_site("v1"))
        assert srv.push(repo, "midway").returncode == 0
        make_repo(repo, slow_site("v2"))
        with StrictLoad(srv, "midway.localhost", resend=False) as load:
            push = subprocess.Popen(["git", "push", srv.remote("midway"), "main"], cwd=repo, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            wait_until(lambda: len(containers()) == 2, 60, "v2's container to start", interval=0.05)
            private_engine.stop()  # while the release waits for v2 to answer
            private_engine.start()
            out, _ = push.communicate(timeout=180)

            seen: list[object] = []

            def settled() -> bool:
                releases = srv.api("GET", "/api/v1/apps/midway/environments/production/releases").json()
                busy = [j for j in srv.api("GET", "/api/v1/jobs?app=midway").json() if j["status"] in ("queued", "running")]
                seen[:] = [[(r["id"], r["status"], r["error"]) for r in releases], containers(), busy]
                return releases[0]["status"] in ("live", "failed") and len(containers()) == 1 and not busy

            try:
                wait_until(settled, 120, "the release to end with one container left")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {seen}; the push said:\n{out[-3000:]}") from None
            time.sleep(0.5)
        releases = srv.api("GET", "/api/v1/apps/midway/environments/production/releases").json()
        live = [r for r in releases if r["status"] == "live"]
        assert len(live) == 1 and not [r for r in releases if r["status"] in ("pending", "switching")], releases
        [(name, release)] = containers().items()
        body = srv.body("midway.localhost").strip()
        assert body == ("v2" if live[0]["id"] == releases[0]["id"] else "v1"), (body, releases)
        assert load.failed == [], load.failed[:5]
        print(f"\nengine restart mid-release: live release {live[0]['id']} ({body}), container {name} of release "
              f"{release}, {sum(load.answers.values())} requests, 0 failed; the push said:\n{out[-1500:]}")
