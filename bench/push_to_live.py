"""Push-to-live benchmark: how long `git push` to dockyard takes until the new page answers
through the proxy, against the same steps done by hand with the docker CLI on the same machine.

Run from the repository root:

    .venv/bin/python bench/push_to_live.py [--rounds 5]

One run starts a real `dockyard server` (temporary home, free ports), creates an app and pushes a
busybox static site once (warm-up). Then, for each round, interleaved with a manual round:

* dockyard: change index.html, commit, and time from the start of `git push` to the moment the new
  text answers at http://127.0.0.1:<proxy>/ with Host <app>.localhost (polled every ~20 ms in a
  thread while the push runs); the whole push command's duration is recorded too.
* manual: `docker build` (legacy builder) of the same site with a new text, `docker push` to the
  dockyard server's registry, `docker run -d -p 127.0.0.1::8000`, and poll the published port until
  the new text answers; then the previous manual container is removed (not timed).

Prints a table, the medians, the ratio dockyard/manual (goal <= 1.30x), the machine's load
average before and after (other work on the machine or its engine slows both sides, not alike)
and a JSON line. Exits 0 whatever the ratio; non-zero when something does not work. Everything it
created is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
import httpx  # noqa: E402
from tests.support import BASE_IMAGE, Server, make_repo, static_site, sweep  # noqa: E402

GOAL = 1.30
APP = "bench"
MANUAL_LABEL = "dockyard.bench"
LIVE_TIMEOUT = 180.0
MANUAL_TIMEOUT = 60.0


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Watcher(threading.Thread):
    """Polls a URL every ~interval seconds until it answers 200 with the expected body."""

    def __init__(self, url: str, expected: str, interval: float, timeout: float, host: str | None = None) -> None:
        super().__init__(daemon=True)
        self.timeout = timeout
        self.url = url
        self.expected = expected
        self.interval = interval
        self.headers = {"Host": host} if host else {}
        self.seen_at: float | None = None
        self.last = ""
        self._stop_event = threading.Event()
        self._done = threading.Event()

    def run(self) -> None:
        try:
            with httpx.Client(timeout=2.0) as client:
                next_tick = time.perf_counter()
                deadline = next_tick + self.timeout
                while not self._stop_event.is_set() and time.perf_counter() < deadline:
                    try:
                        r = client.get(self.url, headers=self.headers)
                        self.last = r.text if r.status_code == 200 else f"<{r.status_code}>"
                    except httpx.HTTPError as exc:
                        self.last = f"<{type(exc).__name__}>"
                    if self.last == self.expected:
                        self.seen_at = time.perf_counter()
                        return
                    next_tick += self.interval
                    delay = next_tick - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    else:
                        next_tick = time.perf_counter()
        finally:
            self._done.set()

    def wait(self, timeout: float) -> float | None:
        self._done.wait(timeout)
        self._stop_event.set()
        self.join(5)
        return self.seen_at


@dataclass
class Manual:
    build: float
    push: float
    run: float
    answer: float

    @property
    def total(self) -> float:
        return self.build + self.push + self.run + self.answer


@dataclass
class Results:
    live: list[float] = field(default_factory=list)
    push_total: list[float] = field(default_factory=list)
    manual: list[Manual] = field(default_factory=list)
    load: list[float] = field(default_factory=list)  # 1-minute load average before and after the rounds


class Bench:
    def __init__(self, work: Path, interval: float, verbose: bool) -> None:
        self.work = work
        self.interval = interval
        self.verbose = verbose
        self.engine = docker.from_env()
        self.server = Server(work / "home")
        self.repo = work / "src"
        self.docker_env = {
            **os.environ,
            "DOCKER_BUILDKIT": "0",
            "DOCKER_CONFIG": str(work / "docker-config"),  # keeps the login out of ~/.docker
        }
        self.manual_containers: list[str] = []
        self.run_id = secrets.token_hex(3)

    # -- helpers --------------------------------------------------------------------------
    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.server.registry_port}"

    def docker(self, *args: str, stdin: str | None = None, timeout: float = 300) -> str:
        proc = subprocess.run(["docker", *args], env=self.docker_env, input=stdin, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise BenchError(f"docker {args[0]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        if self.verbose:
            log(proc.stdout.rstrip())
        return proc.stdout

    def text(self, side: str, round_no: int) -> str:
        # same length for both sides, unique so neither side hits the other's build cache
        return f"{side:<8} round {round_no:02d} {self.run_id} {secrets.token_hex(8)}"

    # -- steps ----------------------------------------------------------------------------
    def setup(self) -> None:
        self.engine.ping()
        self.engine.images.get(BASE_IMAGE)
        self.server.start()
        log(f"server up: api {self.server.url}, proxy :{self.server.proxy_port}, registry {self.registry}, "
            f"installation {self.server.installation}")
        self.server.cli("apps", "create", APP)
        password = (self.server.home / "registry" / "password").read_text().strip()
        self.docker("login", self.registry, "--username", "dockyard", "--password-stdin", stdin=password)

    def dockyard_round(self, round_no: int) -> tuple[float, float]:
        text = self.text("dockyard", round_no)
        make_repo(self.repo, static_site(text))
        watcher = Watcher(f"http://127.0.0.1:{self.server.proxy_port}/", text + "\n", self.interval, LIVE_TIMEOUT,
                          host=f"{APP}.localhost")
        start = time.perf_counter()
        watcher.start()
        push = self.server.push(self.repo, APP)
        push_total = time.perf_counter() - start
        if self.verbose:
            log(push.stderr.rstrip())
        if push.returncode != 0:
            watcher.wait(0)
            raise BenchError(f"git push failed ({push.returncode}):\n{push.stderr[-3000:]}")
        seen = watcher.wait(LIVE_TIMEOUT)
        if seen is None:
            raise BenchError(f"round {round_no}: the new page never answered through the proxy "
                             f"(last answer: {watcher.last!r})")
        return seen - start, push_total

    def manual_round(self, round_no: int) -> Manual:
        text = self.text("manual", round_no)
        context = self.work / "manual" / f"r{round_no}"
        for name, content in static_site(text).items():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            (context / name).write_text(content)
        tag = f"{self.registry}/bench/manual:{round_no}"

        t0 = time.perf_counter()
        self.docker("build", "-t", tag, str(context))
        t1 = time.perf_counter()
        self.docker("push", tag)
        t2 = time.perf_counter()
        cid = self.docker("run", "-d", "--label", f"{MANUAL_LABEL}={self.server.installation}",
                          "-p", "127.0.0.1::8000", tag).strip()
        self.manual_containers.append(cid)
        port = self.docker("port", cid, "8000/tcp").split()[0].rpartition(":")[2]
        t3 = time.perf_counter()
        watcher = Watcher(f"http://127.0.0.1:{port}/", text + "\n", self.interval, MANUAL_TIMEOUT)
        watcher.run()  # in this thread: by hand, you wait for the page after `docker run`
        if watcher.seen_at is None:
            raise BenchError(f"manual round {round_no}: the container never answered (last: {watcher.last!r})")
        t4 = watcher.seen_at

        # a deploy by hand ends with removing the previous container (not timed)
        for old in self.manual_containers[:-1]:
            self.docker("rm", "-f", old)
        del self.manual_containers[:-1]
        return Manual(t1 - t0, t2 - t1, t3 - t2, t4 - t3)

    def run(self, rounds: int) -> Results:
        self.setup()
        # warm-up, not measured: first push (creates the app's release) and a first manual deploy
        make_repo(self.repo, static_site("warm-up"))
        warm = self.server.push(self.repo, APP)
        if warm.returncode != 0:
            raise BenchError(f"warm-up git push failed:\n{warm.stderr[-3000:]}")
        if self.server.body(f"{APP}.localhost") != "warm-up\n":
            raise BenchError(f"warm-up page does not answer: {self.server.body(f'{APP}.localhost')!r}")
        self.manual_round(0)
        log("warm-up done")

        results = Results(load=[os.getloadavg()[0]])
        for n in range(1, rounds + 1):
            # alternate which side goes first so drift and noise hit both alike
            order = ("dockyard", "manual") if n % 2 else ("manual", "dockyard")
            for side in order:
                if side == "dockyard":
                    live, total = self.dockyard_round(n)
                    results.live.append(live)
                    results.push_total.append(total)
                    log(f"round {n}: dockyard push-to-live {live:.2f} s (push command {total:.2f} s)")
                else:
                    m = self.manual_round(n)
                    results.manual.append(m)
                    log(f"round {n}: manual docker {m.total:.2f} s")
        results.load.append(os.getloadavg()[0])
        return results

    def cleanup(self) -> list[str]:
        problems: list[str] = []

        def attempt(what: str, fn) -> None:
            try:
                fn()
            except Exception as exc:
                problems.append(f"{what}: {exc}")

        def remove_manual() -> None:
            filters = {"label": f"{MANUAL_LABEL}={self.server.installation}"} if self.server.installation else None
            ids = set(self.manual_containers)
            if filters:
                ids |= {c.id for c in self.engine.containers.list(all=True, filters=filters)}
            for cid in ids:
                with contextlib.suppress(docker.errors.NotFound):
                    self.engine.containers.get(cid).remove(force=True)

        def delete_apps() -> None:
            if self.server.proc and self.server.proc.poll() is None and self.server.token:
                for app in self.server.api("GET", "/api/v1/apps").json():
                    self.server.api("DELETE", f"/api/v1/apps/{app['name']}")

        def remove_images() -> None:
            prefix = f"{self.registry}/"
            for image in self.engine.images.list():
                if any(t.startswith(prefix) for t in image.tags):
                    with contextlib.suppress(docker.errors.NotFound):
                        self.engine.images.remove(image.id, force=True)

        attempt("remove manual containers", remove_manual)
        attempt("delete apps", delete_apps)
        attempt("stop server", self.server.stop)
        if self.server.installation:
            attempt("sweep installation", lambda: sweep(self.engine, self.server.installation))
        attempt("remove images", remove_images)
        attempt("close engine client", self.engine.close)
        return problems


def report(results: Results, rounds: int) -> None:
    print(f"{'round':>5}  {'push-to-live':>12}  {'push cmd':>8}  {'manual':>7}  "
          f"{'build':>6}  {'push':>6}  {'run':>6}  {'answer':>6}")
    for i in range(rounds):
        m = results.manual[i]
        print(f"{i + 1:>5}  {results.live[i]:>12.2f}  {results.push_total[i]:>8.2f}  {m.total:>7.2f}  "
              f"{m.build:>6.2f}  {m.push:>6.2f}  {m.run:>6.2f}  {m.answer:>6.2f}")
    med_live = statistics.median(results.live)
    med_total = statistics.median(results.push_total)
    med_manual = statistics.median(m.total for m in results.manual)
    ratio = med_live / med_manual
    # Rounds run side by side (interleaved), so each round's own ratio is less exposed to drift.
    per_round = statistics.median(live / m.total for live, m in zip(results.live, results.manual, strict=True))
    print(f"{'med':>5}  {med_live:>12.2f}  {med_total:>8.2f}  {med_manual:>7.2f}")
    print(f"median of the per-round ratios {per_round:.2f}x")
    print(f"median push-to-live {med_live:.2f} s, manual docker {med_manual:.2f} s, "
          f"ratio {ratio:.2f}x (goal <= {GOAL:.2f}x){'' if ratio <= GOAL else '  [above goal]'}")
    print(f"load average (1 min) {' -> '.join(f'{x:.2f}' for x in results.load)} on {os.cpu_count()} CPUs")
    print(json.dumps({
        "bench": "push_to_live",
        "rounds": rounds,
        "push_to_live_s": [round(x, 3) for x in results.live],
        "push_command_s": [round(x, 3) for x in results.push_total],
        "manual_s": [round(m.total, 3) for m in results.manual],
        "manual_steps_s": [{"build": round(m.build, 3), "push": round(m.push, 3), "run": round(m.run, 3),
                            "answer": round(m.answer, 3)} for m in results.manual],
        "median_push_to_live_s": round(med_live, 3),
        "median_push_command_s": round(med_total, 3),
        "median_manual_s": round(med_manual, 3),
        "ratio": round(ratio, 3),
        "median_round_ratio": round(per_round, 3),
        "goal": GOAL,
        "within_goal": ratio <= GOAL,
        "load_average": [round(x, 2) for x in results.load],
        "cpus": os.cpu_count(),
    }))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10, help="measured rounds per side (default 10)")
    parser.add_argument("--interval", type=float, default=0.02, help="poll interval in seconds (default 0.02)")
    parser.add_argument("--verbose", action="store_true", help="show git push and docker output")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary directory (logs, registry)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    bench: Bench | None = None
    status = 0
    try:
        bench = Bench(work, args.interval, args.verbose)
        results = bench.run(args.rounds)
        report(results, args.rounds)
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
            problems = bench.cleanup()
            for problem in problems:
                log(f"cleanup: {problem}")
            if problems and status == 0:
                status = 1
        if args.keep_home:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
