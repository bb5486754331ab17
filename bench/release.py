"""Release benchmark: dockyard's release of a new version next to the seed's `stop; rm; up` with
the docker CLI, in one run on the same machine, with clients calling the app meanwhile.

Run from the repository root:

    .venv/bin/python bench/release.py [--rounds 5]

One run starts a real `dockyard server` (temporary home, free ports) and pushes a small stack once
(warm-up): a web service built from dockyard/busybox:local (busybox httpd serving a static page)
and a worker (`sleep`), in a docker-compose.yml. The seed's side runs the same web image by hand:
`docker build`, then `docker stop NAME; docker rm NAME; docker run -d --name NAME -p
127.0.0.1:PORT:8000 IMAGE`. Each round changes the page's text (a new version) on both sides, the
side that goes first alternating, and measures under 4 clients calling the app (a request every
5-10 ms each, loopback only):

* dockyard release: `git push` of the new version, timed until the new text answers through the
  proxy; failed requests (errors, non-200, a body that is neither the old nor the new text), and
  among them those the proxy reset or closed before answering (its configuration reload), which
  are sent again once to see whether a browser would have got its page; p50/p99 latency.
* dockyard no-op deploy: `dockyard deploy APP` (the same commit again), timed; restarts = the app's
  containers whose id changed plus their RestartCount's growth.
* dockyard rollback: `dockyard rollback APP N` back to the release live before the push, timed (the
  CLI, which follows the job to its end), with the same counts. It names the release because the
  no-op deploy records one of its own (`dockyard rollback APP` would return to the same version).
* seed: build + stop + rm + run, timed until the new text answers on the published port; failed
  requests (never sent again) and latencies.

Prints a table per round, a summary with medians, the ratio dockyard/seed, the goals and whether
each is met, and a JSON line. Exits 0 whatever the figures; non-zero when something does not work.
Everything it created is removed: the app, the server's containers, networks and volumes (by the
installation's label), the seed's containers (by label) and every image it tagged.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
import docker.errors  # noqa: E402
import httpx  # noqa: E402
from tests.support import BASE_IMAGE, Server, free_port, make_repo, static_site, sweep  # noqa: E402

APP = "relbench"
CLIENTS = 4
PAUSE = (0.005, 0.010)  # each client sleeps this long between requests
SETTLE = 0.25  # load goes on this long after a step ends, and starts this long before
LIVE_TIMEOUT = 120.0
SEED_LABEL = "dockyard.bench"
GOAL_ROLLBACK_S = 5.0
GOAL_NOOP_S = 1.0
# Why a request failed without an answer because the proxy closed or reset it (tests.support):
# Caddy closes idle connections and swaps its listening sockets when its configuration changes.
UNANSWERED = ("without sending a response", "Connection reset")

COMPOSE = f"""services:
  web:
    build: .
    ports: ['8000']
  worker:
    image: {BASE_IMAGE}
    command: [sleep, '3600']
"""


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- load ---------------------------------------------------------------------------------------


@dataclass
class Step:
    """What the clients saw during one step (a release, a rollback, a no-op deploy)."""

    duration: float = 0.0  # the step's own figure (see each step)
    live: float | None = None  # from the step's start until the expected text answered
    command: float = 0.0  # the command's own wall time (git push, dockyard deploy/rollback)
    requests: int = 0
    ok: int = 0
    failed: int = 0
    reset: int = 0  # of failed: the proxy reset/closed the connection before answering
    resent_ok: int = 0  # of reset: answered right when sent again once
    kinds: dict[str, int] = field(default_factory=dict)  # failed, by kind
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    gap_ms: float = 0.0  # longest time without a good answer, all clients together
    examples: dict[str, str] = field(default_factory=dict)  # failed, by kind: the first as the client saw it
    reset_at: list[float] = field(default_factory=list)  # when each reset request was sent, from the start
    new_release: bool = False  # the step recorded a release
    named: int | None = None  # the release a rollback was asked for by its number


class Load:
    """``CLIENTS`` threads calling ``url`` (a request every 5-10 ms each, keep-alive), recording
    each request: when it was sent, how long it took, and what came back."""

    def __init__(self, url: str, host: str | None, accepted: set[str], watch: str, resend: bool) -> None:
        self.url = url
        self.headers = {"Host": host} if host else {}
        self.accepted = accepted  # bodies that count as right
        self.watch = watch  # the body whose first answer is timed
        self.resend = resend  # send a request the proxy reset again once (dockyard's side only)
        self.records: list[tuple[float, float, str, str]] = []  # (sent, answered, kind, detail)
        self.resent: list[bool] = []  # per reset request: did it succeed when sent again
        self.seen_at: float | None = None
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def _one(self, client: httpx.Client) -> tuple[str, str]:
        try:
            r = client.get(self.url, headers=self.headers)
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if any(why in str(exc) for why in UNANSWERED):
                return "reset", detail
            return type(exc).__name__, detail
        if r.status_code != 200:
            return f"HTTP {r.status_code}", f"HTTP {r.status_code} {r.text[:80]!r}"
        if r.text not in self.accepted:
            return "wrong body", f"body {r.text[:80]!r}"
        return "ok", r.text

    def _run(self) -> None:
        rng = random.Random()
        with httpx.Client(timeout=5.0) as client:
            while not self.stop.is_set():
                sent = time.perf_counter()
                kind, detail = self._one(client)
                answered = time.perf_counter()
                with self.lock:
                    self.records.append((sent, answered, kind, detail))
                    if kind == "ok" and detail == self.watch and self.seen_at is None:
                        self.seen_at = answered
                if kind == "reset" and self.resend:
                    again, _ = self._one(client)  # not a request of its own in the figures
                    with self.lock:
                        self.resent.append(again == "ok")
                time.sleep(rng.uniform(*PAUSE))

    def __enter__(self) -> Load:
        for _ in range(CLIENTS):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        time.sleep(SETTLE)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.stop.is_set():
            return
        time.sleep(SETTLE)
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)

    def wait_live(self, timeout: float) -> float | None:
        deadline = time.perf_counter() + timeout
        while self.seen_at is None and time.perf_counter() < deadline:
            time.sleep(0.005)
        return self.seen_at

    def summary(self, since: float) -> Step:
        """The requests sent from ``since`` (the step's start) until the load stopped."""
        with self.lock:
            records = [r for r in self.records if r[0] >= since]
            resent = list(self.resent)
        step = Step(requests=len(records))
        good = sorted(answered for _, answered, kind, _ in records if kind == "ok")
        latencies = sorted((answered - sent) * 1000 for sent, answered, kind, _ in records if kind == "ok")
        failures = [(kind, detail) for _, _, kind, detail in records if kind != "ok"]
        step.ok = len(good)
        step.failed = len(failures)
        step.kinds = dict(Counter(kind for kind, _ in failures))
        step.reset = step.kinds.get("reset", 0)
        step.resent_ok = sum(resent) if self.resend else 0
        for kind, detail in failures:
            step.examples.setdefault(kind, detail)
        step.reset_at = [sent - since for sent, _, kind, _ in records if kind == "reset"]
        if latencies:
            step.p50_ms = statistics.median(latencies)
            step.p99_ms = statistics.quantiles(latencies, n=100, method="inclusive")[98] if len(latencies) > 1 \
                else latencies[0]
            step.max_ms = latencies[-1]
        end = max((answered for _, answered, _, _ in records), default=since)
        marks = [since, *good, end]
        step.gap_ms = max((b - a) * 1000 for a, b in itertools.pairwise(marks))
        return step


# -- the bench ------------------------------------------------------------------------------------


@dataclass
class SeedStep(Step):
    build: float = 0.0
    stop_s: float = 0.0
    rm: float = 0.0
    run: float = 0.0
    answer: float = 0.0


@dataclass
class Round:
    release: Step
    noop: Step
    noop_restarts: int
    noop_kept: int
    rollback: Step
    seed: SeedStep


class Bench:
    def __init__(self, work: Path, verbose: bool, seed_init: bool, monitor: str | None) -> None:
        self.work = work
        self.verbose = verbose
        self.seed_init = seed_init
        self.engine = docker.from_env()
        self.server = Server(work / "home")
        # the tests' server watches new containers 1 s after the switch to save time; the bench
        # measures the server's own default unless told otherwise
        self.server.env.pop("DOCKYARD_MONITOR_SECONDS", None)
        if monitor is not None:
            self.server.env["DOCKYARD_MONITOR_SECONDS"] = monitor
        self.repo = work / "src"
        self.run_id = secrets.token_hex(3)
        self.seed_name = f"dockyard-bench-release-{self.run_id}"
        self.seed_label = f"{SEED_LABEL}=release-{self.run_id}"
        self.seed_port = free_port()
        self.docker_env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the legacy builder, as dockyard's builds
        self.live_text = ""  # what dockyard's app answers now
        self.seed_text = ""  # what the seed's container answers now
        self.rolled_back_text = ""  # what the rollback returns to
        self.host = f"{APP}.localhost"

    # -- helpers ------------------------------------------------------------------------------
    def docker(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run(["docker", *args], env=self.docker_env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise BenchError(f"docker {args[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                             f"{proc.stderr[-2000:]}")
        return proc.stdout

    def text(self, side: str, round_no: int) -> str:
        # same length on both sides, unique so neither side hits a build cache
        return f"{side:<8} round {round_no:02d} {self.run_id} {secrets.token_hex(8)}\n"

    def files(self, text: str) -> dict[str, str]:
        return {**static_site(text.rstrip("\n")), "docker-compose.yml": COMPOSE}

    def proxy_load(self, accepted: set[str], watch: str) -> Load:
        return Load(f"http://127.0.0.1:{self.server.proxy_port}/", self.host, accepted, watch, resend=False)

    def app_containers(self) -> dict[str, int]:
        """The app's containers (id → RestartCount), as `docker ps` shows them."""
        filters = {"label": [f"dockyard.installation={self.server.installation}", f"dockyard.app={APP}"]}
        found = {}
        for c in self.engine.containers.list(filters=filters):
            c.reload()
            found[c.id] = int(c.attrs.get("RestartCount", 0))
        return found

    def releases(self) -> list[dict[str, Any]]:
        return list(self.server.api("GET", f"/api/v1/apps/{APP}/environments/production/releases").json())

    # -- setup ----------------------------------------------------------------------------------
    def setup(self) -> None:
        self.engine.ping()
        self.engine.images.get(BASE_IMAGE)
        self.server.start()
        log(f"server up: api {self.server.url}, proxy :{self.server.proxy_port}, installation "
            f"{self.server.installation}; seed container {self.seed_name} on 127.0.0.1:{self.seed_port}")
        self.server.cli("apps", "create", APP)
        # warm-up, not measured: the stack's first release, and the seed's first container
        self.live_text = self.text("dockyard", 0)
        make_repo(self.repo, self.files(self.live_text))
        push = self.server.push(self.repo, APP)
        if push.returncode != 0 or "is live" not in push.stderr:
            raise BenchError(f"warm-up git push failed:\n{push.stderr[-3000:]}")
        if self.server.body(self.host) != self.live_text:
            raise BenchError(f"warm-up page does not answer: {self.server.body(self.host)!r}")
        self.seed_text = self.text("seed", 0)
        image = self.seed_build(0, self.seed_text)
        self.seed_run(image)
        load = Load(f"http://127.0.0.1:{self.seed_port}/", None, {self.seed_text}, self.seed_text, resend=False)
        with load:
            if load.wait_live(30) is None:
                raise BenchError("the seed's first container never answered")
        log("warm-up done")

    # -- dockyard -------------------------------------------------------------------------------
    def dockyard_release(self, round_no: int) -> Step:
        old, new = self.live_text, self.text("dockyard", round_no)
        make_repo(self.repo, self.files(new))
        with self.proxy_load({old, new}, new) as load:
            t0 = time.perf_counter()
            push = self.server.push(self.repo, APP)
            pushed = time.perf_counter() - t0
            if push.returncode != 0 or "is live" not in push.stderr:
                raise BenchError(f"round {round_no}: git push failed ({push.returncode}):\n{push.stderr[-3000:]}")
            if load.wait_live(LIVE_TIMEOUT) is None:
                raise BenchError(f"round {round_no}: the new text never answered through the proxy")
        if self.verbose:
            log(push.stderr.rstrip())
        step = load.summary(t0)
        step.live = load.seen_at - t0 if load.seen_at is not None else None
        step.duration = step.live or 0.0
        step.command = pushed
        self.live_text = new
        return step

    def dockyard_noop(self, round_no: int) -> tuple[Step, int, int]:
        before = self.app_containers()
        releases_before = self.releases()
        with self.proxy_load({self.live_text}, self.live_text) as load:
            t0 = time.perf_counter()
            out = self.server.cli("deploy", APP, check=False)
            took = time.perf_counter() - t0
        if out.returncode != 0:
            raise BenchError(f"round {round_no}: dockyard deploy failed:\n{out.stdout[-3000:]}\n{out.stderr[-2000:]}")
        if self.verbose:
            log(out.stdout.rstrip())
        after = self.app_containers()
        restarts = len(set(before) - set(after)) + sum(max(0, after[c] - n) for c, n in before.items() if c in after)
        kept = out.stdout.count("unchanged, keeping")
        step = load.summary(t0)
        step.duration = step.command = took
        step.new_release = self.releases()[0]["id"] != releases_before[0]["id"]
        return step, restarts, kept

    def dockyard_rollback(self, round_no: int, target: dict[str, Any]) -> Step:
        """Back to ``target``, the release that was live before this round's push."""
        old, new = self.live_text, self.rolled_back_text
        live_before = self.releases()[0]
        previous = next((r for r in self.releases() if r["id"] < live_before["id"] and r["status"] != "failed"), None)
        # `dockyard rollback APP` goes to the release before the live one; name it when the
        # no-op deploy recorded a release of its own in between
        by_default = previous is not None and previous["id"] == target["id"]
        args = ("rollback", APP) if by_default else ("rollback", APP, str(target["id"]))
        with self.proxy_load({old, new}, new) as load:
            t0 = time.perf_counter()
            out = self.server.cli(*args, check=False)
            took = time.perf_counter() - t0
            if out.returncode != 0:
                raise BenchError(f"round {round_no}: dockyard {' '.join(args)} failed:\n{out.stdout[-3000:]}\n"
                                 f"{out.stderr[-2000:]}")
            if load.wait_live(LIVE_TIMEOUT) is None:
                raise BenchError(f"round {round_no}: the rolled-back text never answered")
        if self.verbose:
            log(out.stdout.rstrip())
        step = load.summary(t0)
        step.duration = step.command = took
        step.live = load.seen_at - t0 if load.seen_at is not None else None
        step.named = target["id"] if len(args) == 3 else None
        self.live_text = new
        return step

    def dockyard_round(self, round_no: int) -> tuple[Step, Step, int, int, Step]:
        before = self.releases()[0]  # the live release: the rollback's target
        if before["status"] != "live":
            raise BenchError(f"round {round_no}: newest release is {before['status']}, not live")
        self.rolled_back_text = self.live_text
        release = self.dockyard_release(round_no)
        noop, restarts, kept = self.dockyard_noop(round_no)
        rollback = self.dockyard_rollback(round_no, before)
        return release, noop, restarts, kept, rollback

    # -- the seed's way -------------------------------------------------------------------------
    def seed_build(self, round_no: int, text: str) -> str:
        context = self.work / "seed" / f"r{round_no}"
        for name, content in static_site(text.rstrip("\n")).items():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            (context / name).write_text(content)
        image = f"{self.seed_name}/web:r{round_no}"
        self.docker("build", "-q", "-t", image, str(context))
        return image

    def seed_run(self, image: str) -> None:
        init = ["--init"] if self.seed_init else []
        self.docker("run", "-d", "--name", self.seed_name, "--label", self.seed_label, *init,
                    "-p", f"127.0.0.1:{self.seed_port}:8000", image)

    def seed_round(self, round_no: int) -> SeedStep:
        old, new = self.seed_text, self.text("seed", round_no)
        load = Load(f"http://127.0.0.1:{self.seed_port}/", None, {old, new}, new, resend=False)
        with load:
            t0 = time.perf_counter()
            image = self.seed_build(round_no, new)
            t1 = time.perf_counter()
            self.docker("stop", self.seed_name)
            t2 = time.perf_counter()
            self.docker("rm", self.seed_name)
            t3 = time.perf_counter()
            self.seed_run(image)
            t4 = time.perf_counter()
            if load.wait_live(LIVE_TIMEOUT) is None:
                raise BenchError(f"seed round {round_no}: the new container never answered")
        assert load.seen_at is not None
        summary = load.summary(t0)
        step = SeedStep(**asdict(summary))
        step.live = step.duration = load.seen_at - t0
        step.build, step.stop_s, step.rm, step.run = t1 - t0, t2 - t1, t3 - t2, t4 - t3
        step.command = t4 - t0  # the four docker commands
        step.answer = load.seen_at - t4
        self.seed_text = new
        # the previous round's image is no longer used (not timed)
        with contextlib.suppress(BenchError):
            if round_no > 0:
                self.docker("rmi", f"{self.seed_name}/web:r{round_no - 1}")
        return step

    def run(self, rounds: int) -> list[Round]:
        self.setup()
        out: list[Round] = []
        for n in range(1, rounds + 1):
            order = ("dockyard", "seed") if n % 2 else ("seed", "dockyard")
            got: dict[str, Any] = {}
            for side in order:
                if side == "dockyard":
                    got["dockyard"] = self.dockyard_round(n)
                    release, noop, restarts, _, rollback = got["dockyard"]
                    log(f"round {n}: dockyard release {release.duration:.2f} s ({release.failed} failed), no-op "
                        f"{noop.duration:.2f} s ({restarts} restarts), rollback {rollback.duration:.2f} s "
                        f"({rollback.failed} failed)")
                else:
                    got["seed"] = self.seed_round(n)
                    log(f"round {n}: seed release {got['seed'].duration:.2f} s ({got['seed'].failed} failed)")
            release, noop, restarts, kept, rollback = got["dockyard"]
            out.append(Round(release, noop, restarts, kept, rollback, got["seed"]))
        return out

    # -- cleanup ------------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        problems: list[str] = []

        def attempt(what: str, fn) -> None:  # type: ignore[no-untyped-def]
            try:
                fn()
            except Exception as exc:
                problems.append(f"{what}: {exc}")

        def remove_seed() -> None:
            for c in self.engine.containers.list(all=True, filters={"label": self.seed_label}):
                c.remove(force=True)
            remove_tagged(self.engine, f"{self.seed_name}/")

        def delete_app() -> None:
            if self.server.proc and self.server.proc.poll() is None and self.server.token:
                for app in self.server.api("GET", "/api/v1/apps").json():
                    self.server.api("DELETE", f"/api/v1/apps/{app['name']}")

        attempt("remove the seed's containers and images", remove_seed)
        attempt("delete the app", delete_app)
        attempt("stop the server", self.server.stop)
        if self.server.installation:
            attempt("sweep the installation", lambda: sweep(self.engine, self.server.installation))
        attempt("remove images", lambda: remove_tagged(self.engine, f"127.0.0.1:{self.server.registry_port}/"))
        attempt("close the engine client", self.engine.close)
        return problems


def remove_tagged(engine: docker.DockerClient, prefix: str) -> None:
    """Remove the images tagged ``prefix...`` (children before their bases). One listing call per
    pass: other engines' users remove images meanwhile, which `images.list()` (an inspect per
    image) does not survive."""
    for _ in range(5):
        left = [i for i in engine.api.images() if any(t.startswith(prefix) for t in i.get("RepoTags") or ())]
        if not left:
            return
        for tag in [t for i in left for t in i.get("RepoTags") or () if t.startswith(prefix)]:
            with contextlib.suppress(docker.errors.APIError):  # gone meanwhile, or a child is removed first
                engine.api.remove_image(tag, force=True)  # by tag: another's tag on the image stays
    raise BenchError(f"images tagged {prefix}... are left: {[t for i in left for t in i.get('RepoTags') or ()]}")


# -- report ---------------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(rounds: list[Round], seed_init: bool, monitor: str | None) -> None:
    print("release of a new version under load (4 clients, a request every 5-10 ms each); DOCKYARD_MONITOR_SECONDS "
          + (monitor if monitor is not None else "the server's default"))
    print(f"{'':>5}  {'---------------- dockyard (git push, through the proxy) -----------------':<74}  "
          f"{'------------ seed (docker build; stop; rm; run) ------------':<60}")
    print(f"{'round':>5}  {'live s':>6} {'push s':>6} {'reqs':>5} {'failed':>6} {'reset':>5} {'resent ok':>9} "
          f"{'p50 ms':>6} {'p99 ms':>6} {'max ms':>7} {'gap ms':>6}  "
          f"{'live s':>6} {'reqs':>5} {'failed':>6} {'p50 ms':>6} {'p99 ms':>6} {'gap ms':>7} "
          f"{'build':>5} {'stop':>5} {'rm':>4} {'run':>4} {'answer':>6}")
    for i, r in enumerate(rounds, 1):
        d, s = r.release, r.seed
        print(f"{i:>5}  {d.duration:>6.2f} {d.command:>6.2f} {d.requests:>5} {d.failed:>6} "
              f"{d.reset:>5} {d.resent_ok:>9} {d.p50_ms:>6.1f} {d.p99_ms:>6.1f} {d.max_ms:>7.1f} {d.gap_ms:>6.0f}  "
              f"{s.duration:>6.2f} {s.requests:>5} {s.failed:>6} {s.p50_ms:>6.1f} {s.p99_ms:>6.1f} {s.gap_ms:>7.0f} "
              f"{s.build:>5.2f} {s.stop_s:>5.2f} {s.rm:>4.2f} {s.run:>4.2f} {s.answer:>6.2f}")
    print()
    print("dockyard rollback (`dockyard rollback APP`, the CLI following its job) and no-op deploy "
          "(`dockyard deploy APP`, same commit)")
    print(f"{'round':>5}  {'rollback s':>10} {'live s':>6} {'reqs':>5} {'failed':>6} {'reset':>5} {'resent ok':>9} "
          f"{'p99 ms':>6}  {'no-op s':>7} {'restarts':>8} {'kept':>4} {'reqs':>5} {'failed':>6} {'p99 ms':>6}")
    for i, r in enumerate(rounds, 1):
        b, n = r.rollback, r.noop
        print(f"{i:>5}  {b.duration:>10.2f} {b.live or 0.0:>6.2f} {b.requests:>5} {b.failed:>6} {b.reset:>5} "
              f"{b.resent_ok:>9} {b.p99_ms:>6.1f}  {n.duration:>7.2f} {r.noop_restarts:>8} {r.noop_kept:>4} "
              f"{n.requests:>5} {n.failed:>6} {n.p99_ms:>6.1f}")
    notes = [f"round {i} {what}: {step.failed} failed: "
             + "; ".join(f"{step.kinds[kind]} {kind} ({detail})" for kind, detail in step.examples.items())
             + (f"; reset sent at {', '.join(f'{t:.2f}' for t in step.reset_at[:5])} s, the new text answering "
                f"from {step.live:.2f} s" if step.reset_at and step.live is not None and what != "seed" else "")
             for i, r in enumerate(rounds, 1)
             for what, step in (("release", r.release), ("no-op", r.noop), ("rollback", r.rollback),
                                ("seed", r.seed)) if step.failed]
    if notes:
        print()
        print("failed requests, by kind, with the first error of each as the client saw it "
              "('reset': closed or reset before any answer):")
        for note in notes:
            print(f"  {note}")
    recorded = sum(r.noop.new_release for r in rounds)
    named = sum(r.rollback.named is not None for r in rounds)
    if recorded or named:
        print(f"  note: the no-op deploy recorded a release of its own in {recorded}/{len(rounds)} rounds, so "
              f"`dockyard rollback APP` (the release before the live one) would return to the same version; "
              f"the rollback named the release live before the push ({named}/{len(rounds)} rounds: "
              "`dockyard rollback APP N`)")

    dy = [r.release.duration for r in rounds]
    sd = [r.seed.duration for r in rounds]
    rb = [r.rollback.duration for r in rounds]
    rb_live = [r.rollback.live or 0.0 for r in rounds]
    noop = [r.noop.duration for r in rounds]
    ratio = med(dy) / med(sd)
    per_round = med([a / b for a, b in zip(dy, sd, strict=True)])
    d_failed = sum(r.release.failed + r.rollback.failed + r.noop.failed for r in rounds)
    d_reset = sum(r.release.reset + r.rollback.reset + r.noop.reset for r in rounds)
    d_resent_ok = sum(r.release.resent_ok + r.rollback.resent_ok + r.noop.resent_ok for r in rounds)
    d_requests = sum(r.release.requests + r.rollback.requests + r.noop.requests for r in rounds)
    s_failed = sum(r.seed.failed for r in rounds)
    s_requests = sum(r.seed.requests for r in rounds)
    restarts = sum(r.noop_restarts for r in rounds)
    failed_after_resend = d_failed - d_resent_ok

    print()
    print("summary (medians over the rounds)")
    print(f"  release duration: dockyard {med(dy):.2f} s, seed {med(sd):.2f} s "
          f"(its docker stop {med([r.seed.stop_s for r in rounds]):.2f} s"
          f"{', run with --init' if seed_init else ''}); ratio dockyard/seed {ratio:.2f}x "
          f"(median of the per-round ratios {per_round:.2f}x)")
    print(f"  p99 latency during the release: dockyard {med([r.release.p99_ms for r in rounds]):.1f} ms "
          f"(p50 {med([r.release.p50_ms for r in rounds]):.1f} ms), seed {med([r.seed.p99_ms for r in rounds]):.1f} ms "
          f"(p50 {med([r.seed.p50_ms for r in rounds]):.1f} ms); longest gap without a good answer: dockyard "
          f"{med([r.release.gap_ms for r in rounds]):.0f} ms, seed {med([r.seed.gap_ms for r in rounds]):.0f} ms")
    print(f"  failed requests: dockyard {d_failed} of {d_requests} (release {sum(r.release.failed for r in rounds)}, "
          f"rollback {sum(r.rollback.failed for r in rounds)}, no-op {sum(r.noop.failed for r in rounds)}); "
          f"{d_reset} of them reset by the proxy's reload before any answer, {d_resent_ok} of those answered when "
          f"sent again once (as browsers do) -> {failed_after_resend} would still fail; "
          f"seed {s_failed} of {s_requests} (never sent again)")
    print(f"  rollback: {med(rb):.2f} s (max {max(rb):.2f} s), the old text answering after {med(rb_live):.2f} s; "
          f"no-op deploy: {med(noop):.2f} s "
          f"(max {max(noop):.2f} s), {restarts} restarts in all")

    goals = [
        ("0 failed requests (dockyard: release, rollback, no-op)", d_failed == 0,
         f"{d_failed} failed ({d_reset} reset by the proxy's reload; {failed_after_resend} after one resend)"),
        ("faster than the seed's stop; rm; up", ratio < 1.0, f"{med(dy):.2f} s vs {med(sd):.2f} s, {ratio:.2f}x"),
        (f"rollback of a single-service app under {GOAL_ROLLBACK_S:.0f} s (the command, to its end)",
         med(rb) < GOAL_ROLLBACK_S,
         f"median {med(rb):.3f} s, {sum(x < GOAL_ROLLBACK_S for x in rb)}/{len(rb)} rounds under; the old text "
         f"answered after {med(rb_live):.2f} s (this stack's worker is kept)"),
        (f"no-op deploy under {GOAL_NOOP_S:.0f} s with 0 restarts", med(noop) < GOAL_NOOP_S and restarts == 0,
         f"median {med(noop):.3f} s, {sum(x < GOAL_NOOP_S for x in noop)}/{len(noop)} rounds under, "
         f"{restarts} restarts"),
    ]
    print()
    print("goals")
    for what, met, figures in goals:
        print(f"  [{'met' if met else 'NOT met'}] {what}: {figures}")

    def figures(step: Step, **more: Any) -> dict[str, Any]:
        out = {k: v for k, v in asdict(step).items() if k not in ("examples", "new_release", "named", "reset_at")}
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in {**out, **more}.items()}

    print(json.dumps({
        "bench": "release",
        "rounds": len(rounds),
        "clients": CLIENTS,
        "seed_init": seed_init,
        "monitor_seconds": monitor,
        "dockyard_release_s": [round(x, 3) for x in dy],
        "dockyard_push_command_s": [round(r.release.command, 3) for r in rounds],
        "seed_release_s": [round(x, 3) for x in sd],
        "rollback_s": [round(x, 3) for x in rb],
        "rollback_live_s": [round(x, 3) for x in rb_live],
        "noop_deploy_s": [round(x, 3) for x in noop],
        "noop_restarts": [r.noop_restarts for r in rounds],
        "median_dockyard_release_s": round(med(dy), 3),
        "median_seed_release_s": round(med(sd), 3),
        "ratio": round(ratio, 3),
        "median_round_ratio": round(per_round, 3),
        "median_rollback_s": round(med(rb), 3),
        "median_rollback_live_s": round(med(rb_live), 3),
        "median_noop_deploy_s": round(med(noop), 3),
        "dockyard_p99_ms": round(med([r.release.p99_ms for r in rounds]), 1),
        "seed_p99_ms": round(med([r.seed.p99_ms for r in rounds]), 1),
        "dockyard_failed": d_failed,
        "dockyard_reset_by_proxy_reload": d_reset,
        "dockyard_resent_ok": d_resent_ok,
        "dockyard_requests": d_requests,
        "seed_failed": s_failed,
        "seed_requests": s_requests,
        "release": [figures(r.release) for r in rounds],
        "rollback": [figures(r.rollback, named_release=r.rollback.named) for r in rounds],
        "noop": [figures(r.noop, restarts=r.noop_restarts, kept=r.noop_kept, new_release=r.noop.new_release)
                 for r in rounds],
        "seed": [figures(r.seed) for r in rounds],
        "goals": {what: met for what, met, _ in goals},
    }))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per side (default 5)")
    parser.add_argument("--seed-init", action="store_true",
                        help="run the seed's container with --init (busybox httpd as PID 1 ignores SIGTERM, so "
                             "`docker stop` waits its 10 s; dockyard runs containers with an init)")
    parser.add_argument("--monitor-seconds", metavar="S",
                        help="DOCKYARD_MONITOR_SECONDS for the server (default: the server's own default): how long "
                             "a release watches its new containers after the switch, before the old ones stop")
    parser.add_argument("--verbose", action="store_true", help="show the push, deploy and rollback output")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary directory (server log)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # a stopped bench still removes what it created
    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-release-"))
    bench: Bench | None = None
    status = 0
    try:
        bench = Bench(work, args.verbose, args.seed_init, args.monitor_seconds)
        rounds = bench.run(args.rounds)
        report(rounds, args.seed_init, args.monitor_seconds)
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except Exception as exc:
        log(f"bench failed: {exc}")
        if args.verbose or not isinstance(exc, BenchError | AssertionError):
            traceback.print_exc()
        server_log = work / "home" / "server.log"
        if server_log.exists():
            log(f"--- tail of {server_log} ---\n{server_log.read_text(errors='replace')[-3000:]}")
        status = 1
    finally:
        if bench is not None:
            for problem in bench.cleanup():
                log(f"cleanup: {problem}")
                status = status or 1
        if args.keep_home:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
