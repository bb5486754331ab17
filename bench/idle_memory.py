"""Idle memory (RSS) of dockyard's three long-running parts: the server, the proxy and the registry.

Starts a real `dockyard server` (temporary home, free ports), deploys a static site, lets the
server idle, and reads VmRSS of the server's process and of the proxy's and registry's container
processes. Prints one line each and a JSON summary. Goal: the server under 80 MB.

    .venv/bin/python bench/idle_memory.py [--idle 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import docker  # noqa: E402
from tests.support import Server, make_repo, static_site, sweep  # noqa: E402

GOAL_SERVER_MB = 80.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idling before reading (default 10)")
    args = parser.parse_args(argv)
    engine = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="dy-bench-mem-") as work:
        server = Server(Path(work) / "home")
        server.start()
        try:
            server.cli("apps", "create", "idle")
            push = server.push(make_repo(Path(work) / "src", static_site("idle")), "idle")
            if push.returncode != 0 or server.body("idle.localhost") != "idle\n":
                print(push.stderr, file=sys.stderr)
                return 1
            time.sleep(args.idle)
            assert server.proc is not None
            prefix = f"{server.env['DOCKYARD_NAME_PREFIX']}-{server.installation}"
            figures = {"server": rss_mb(server.proc.pid)}
            for role in ("proxy", "registry"):
                figures[role] = rss_mb(engine.containers.get(f"{prefix}-{role}").attrs["State"]["Pid"])
            for name, mb in figures.items():
                print(f"{name:9} {mb:6.1f} MB")
            total = sum(figures.values())
            print(f"{'all three':9} {total:6.1f} MB (server goal < {GOAL_SERVER_MB:.0f} MB)")
            print(json.dumps({"bench": "idle_memory", "rss_mb": {k: round(v, 1) for k, v in figures.items()},
                              "total_mb": round(total, 1), "server_within_goal": figures["server"] < GOAL_SERVER_MB}))
        finally:
            if server.proc and server.proc.poll() is None:
                server.api("DELETE", "/api/v1/apps/idle")
            server.stop()
            sweep(engine, server.installation)
    return 0


if __name__ == "__main__":
    sys.exit(main())
