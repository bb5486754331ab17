"""The API's routes, its dependencies and the git endpoint call services, never an adapter: no
module under entrypoints/ reaches for the platform's adapters (a source scan)."""

from __future__ import annotations

import re
from pathlib import Path

import dockyard.entrypoints

ENTRYPOINTS = Path(dockyard.entrypoints.__file__).parent
ADAPTERS = ("store", "repos", "engine", "registry", "proxy", "builder", "plane")
# `p.store`, `platform.engine`, `request.app.state.platform.proxy`...: the platform's adapter fields
REACH = re.compile(r"\b(?:p|platform)\.(" + "|".join(ADAPTERS) + r")\b")


def test_the_entrypoints_are_found() -> None:
    found = {path.relative_to(ENTRYPOINTS).as_posix() for path in ENTRYPOINTS.rglob("*.py")}
    assert {"deps.py", "git_http.py", "routes/apps.py", "routes/tokens.py", "routes/jobs.py"} <= found


def test_no_entrypoint_reaches_an_adapter_through_the_platform() -> None:
    reaching = [f"{path.relative_to(ENTRYPOINTS)}:{number}: {line.strip()}"
                for path in sorted(ENTRYPOINTS.rglob("*.py"))
                for number, line in enumerate(path.read_text().splitlines(), 1) if REACH.search(line)]
    assert reaching == []


def test_the_scan_sees_a_reach() -> None:
    assert REACH.search("    jobs = p.store.list_jobs(app)")
    assert REACH.search("x = platform.engine.watch")
    assert not REACH.search("p.system.registry_address")
    assert not REACH.search("p.environments.store")
