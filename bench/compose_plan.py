"""Load, validate and plan a 200-service stack: the pure path of `dockyard plan` and of every
deploy (the bounded parse of the compose file, its schema, interpolation and keys, the
environment's hosts, the per-service changes against a live release, and the release's
actions). Goal: under 300 ms.

Measured in this process (what the bounded child does), and through the bounded child as the
server runs it (``inspect_source``: a spare child, JSON both ways). The ratio printed is the
child's total against the in-process parse, so the cost of the bounds shows.

    .venv/bin/python bench/compose_plan.py [--services 200] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from dockyard.domain import hosts  # noqa: E402
from dockyard.domain.model import Release, RunningService  # noqa: E402
from dockyard.planning.changes import changes  # noqa: E402
from dockyard.planning.deploy import plan_release  # noqa: E402
from dockyard.services import inspect  # noqa: E402

GOAL_MS = 300.0


def stack(n: int) -> dict[str, str]:
    """A compose file of ``n`` services in the seed's shape: web services with ports, env files,
    interpolated variables, hostnames, depends_on chains, healthchecks, volumes for a tenth."""
    lines = ["version: '2'", "services:"]
    for i in range(n):
        lines += [
            f"  svc{i}:",
            "    build: ." if i == 0 else f"    image: registry.example.com/team/svc{i % 7}:${{TAG:-1.{i % 5}}}",
            f"    hostname: host{i}",
            f"    container_name: box{i}",
            f"    ports: ['{30000 + i}:8000']" if i % 3 == 0 else "    expose: ['8000']",
            "    env_file: common.env",
            "    environment:",
            f"      INDEX: '{i}'",
            "      DB: ${DB_NAME:?set DB_NAME}",
            "    networks: [back]",
            "    restart: unless-stopped",
        ]
        if i:
            lines += [f"    depends_on: [svc{i - 1}]"]
        if i % 10 == 0:
            lines += [f"    volumes: ['data{i}:/data']"]
        if i % 4 == 0:
            lines += ["    healthcheck:", "      test: ['CMD', 'true']", "      interval: 5s"]
    lines += ["networks:", "  back:", "    driver: bridge", "volumes:"]
    lines += [f"  data{i}: {{}}" for i in range(0, n, 10)]
    return {"docker-compose.yml": "\n".join(lines) + "\n", "common.env": "LOG=info\nREGION=eu\n",
            "Dockerfile": "# team/front\n#\n# VERSION 1.0\nFROM scratch\nEXPOSE 8000\n"}


def timed(fn, rounds: int, pause: float = 0.0) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, result = [], None
    for _ in range(rounds):
        time.sleep(pause)  # not timed
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    files = stack(args.services)

    def read(path: str, limit: int) -> str | None:
        return files.get(path)

    variables = {"DB_NAME": "crigen", "TAG": "2.0"}

    def parse() -> inspect.Inspection:
        return inspect.parse_source(list(files), read, "bench", base_domain="localhost", variables=variables,
                                    environment="recette")

    def parse_in_child() -> inspect.Inspection:
        return inspect.inspect_source(list(files), read, "bench", base_domain="localhost", variables=variables,
                                      environment="recette")

    parse_ms, found = timed(parse, args.rounds)
    assert isinstance(found, inspect.Inspection)
    services = tuple(replace(s, hosts=hosts.for_environment(s.hosts, "bench", "recette", "localhost"))
                     for s in found.services)
    live = tuple(replace(s, environment=(*s.environment, ("EXTRA", "1"))) if i % 2 else s
                 for i, s in enumerate(services))
    observed = [RunningService(id=f"c{i}", app="bench", service=s.name, release=1, image=s.image, state="running",
                               upstream=f"10.0.0.{i % 250}:8000" if s.port else None, environment="recette",
                               spec_hash=s.spec_hash) for i, s in enumerate(live)]

    def plan() -> tuple[object, object]:
        return changes(live, services), plan_release(Release(2, "bench", "c" * 40, services, "recette"), observed)

    plan_ms, _ = timed(plan, args.rounds)
    inspect.warm()
    # each parse uses the spare child and starts the next one: pushes are not back to back, so
    # the next spare is given the time to start (untimed), as on a server
    child_ms, _ = timed(parse_in_child, args.rounds, pause=1.0)
    inspect.shutdown()
    per_service = changes(live, services)
    total = parse_ms + plan_ms
    print(f"{args.services} services: load+validate {parse_ms:.1f} ms, plan {plan_ms:.1f} ms, "
          f"total {total:.1f} ms (goal < {GOAL_MS:.0f} ms: {'met' if total < GOAL_MS else 'NOT met'})")
    print(f"through the bounded child: {child_ms:.1f} ms + plan {plan_ms:.1f} ms = {child_ms + plan_ms:.1f} ms "
          f"({child_ms / parse_ms:.2f}x the in-process parse)")
    print(f"changes: {sum(1 for c in per_service if c.action == 'replace')} to replace, "
          f"{sum(1 for c in per_service if c.action == 'keep')} kept; warnings: {len(found.warnings)}")
    print(json.dumps({"services": args.services, "parse_ms": round(parse_ms, 1), "plan_ms": round(plan_ms, 1),
                      "total_ms": round(total, 1), "child_parse_ms": round(child_ms, 1), "goal_ms": GOAL_MS}))
    return 0 if total < GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
