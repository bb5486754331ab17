"""Compose keys that hand a container the host are refused until an admin allows them for the
app; once allowed, they reach the container, and the default limits stay."""

from __future__ import annotations

from pathlib import Path

import docker

from tests.support import BASE_IMAGE, Server, make_repo, static_site

COMPOSE = f"""
services:
  web:
    build: .
    ports: ["8000"]
    cap_add: [NET_ADMIN]
    volumes: ["/etc/hostname:/host-hostname:ro"]
  sidecar:
    image: {BASE_IMAGE}
    command: ["sleep", "3600"]
    network_mode: "service:web"
    depends_on: [web]
"""


def test_host_access_is_refused_then_allowed_and_applied(
    server: Server, app_name: str, tmp_path: Path, engine: docker.DockerClient
) -> None:
    server.cli("apps", "create", app_name)
    repo = make_repo(tmp_path / "src", {**static_site("with host access"), "docker-compose.yml": COMPOSE})
    refused = server.push(repo, app_name)
    assert refused.returncode != 0
    assert "services/web/cap_add" in refused.stderr
    assert f"dockyard apps allow {app_name} cap_add" in refused.stderr

    server.cli("apps", "allow", app_name, "cap_add")
    refused = server.push(repo, app_name)  # the bind mount still needs its own allowance
    assert refused.returncode != 0 and "services/web/volumes/0" in refused.stderr

    server.cli("apps", "allow", app_name, "bind_mounts")
    push = server.push(repo, app_name)
    assert push.returncode == 0 and "is live" in push.stderr, push.stderr
    assert server.body(f"{app_name}.localhost") == "with host access\n"
    label = f"dockyard.installation={server.installation}"
    web, = engine.containers.list(filters={"label": [label, f"dockyard.app={app_name}", "dockyard.service=web"]})
    sidecar, = engine.containers.list(filters={"label": [label, f"dockyard.app={app_name}",
                                                         "dockyard.service=sidecar"]})
    host = web.attrs["HostConfig"]
    assert host["CapAdd"] == ["NET_ADMIN"] and "/etc/hostname:/host-hostname:ro" in host["Binds"]
    assert host["Privileged"] is False and "no-new-privileges:true" in host["SecurityOpt"]
    assert host["PidsLimit"] == 1024 and host["Memory"] == 1024**3
    assert web.exec_run(["cat", "/host-hostname"]).output == Path("/etc/hostname").read_bytes()
    # a service may share another service's network without any allowance (Compose's service:NAME)
    assert sidecar.attrs["HostConfig"]["NetworkMode"] == f"container:{web.id}"
