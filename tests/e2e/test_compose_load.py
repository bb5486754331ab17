"""A compose file written as people write it deploys: `version: '3.7'`, a port from `.env`
through `${PORT:-8000}`, and a key dockyard does not honour yet, which the push output warns
about. A compose file that breaks the Compose schema is refused, naming file, line and key path,
and the previous release keeps serving."""

from __future__ import annotations

from pathlib import Path

from tests.support import Server, make_repo, static_site

COMPOSE = """\
version: '3.7'
services:
  web:
    build: .
    init: true
    ports:
      - "${PORT:-8000}"
"""


def test_a_compose_file_as_people_write_it_deploys_and_a_schema_violation_is_refused(
    server: Server, app_name: str, tmp_path: Path
) -> None:
    server.cli("apps", "create", app_name)
    site = static_site("loaded as written")
    # the site listens on 8001, which only .env says: the default (8000) would not answer
    site["Dockerfile"] = site["Dockerfile"].replace("8000", "8001")
    repo = make_repo(tmp_path / "src", {**site, ".env": "# where the site listens\nexport PORT=8001\n",
                                        "docker-compose.yml": COMPOSE})
    push = server.push(repo, app_name)
    assert push.returncode == 0, push.stderr
    assert ("remote:  !     warning: docker-compose.yml line 5: services/web/init: not honoured yet: dockyard runs "
            "every container with an init process") in push.stderr
    assert "is live" in push.stderr, push.stderr
    assert server.body(f"{app_name}.localhost") == "loaded as written\n"
    live = server.api("GET", f"/api/v1/apps/{app_name}").json()["live_release"]
    (web,) = live["services"]
    assert web["port"] == 8001

    make_repo(repo, {"docker-compose.yml": COMPOSE.replace('    ports:\n      - "${PORT:-8000}"\n',
                                                            "    ports: {bad: 1}\n")})
    refused = server.push(repo, app_name)
    assert refused.returncode != 0
    assert ("Push rejected: docker-compose.yml line 6: services/web/ports: should be a list, not a mapping"
            in refused.stderr), refused.stderr
    assert "Compose specification" in refused.stderr
    assert "Nothing was deployed; the running release keeps serving." in refused.stderr
    assert server.body(f"{app_name}.localhost") == "loaded as written\n"
    assert server.api("GET", f"/api/v1/apps/{app_name}").json()["live_release"]["id"] == live["id"]
