"""What runs dockyard on this host, as a user asks `dockyard system`: the data plane's
containers, the engine's live-restore, and how full the network pool is."""

from __future__ import annotations

from typing import Any

from dockyard.adapters.dataplane import DataPlane
from dockyard.adapters.docker_orchestrator import DockerOrchestrator


def status(plane: DataPlane, engine: DockerOrchestrator, proxy_port: int, registry: str) -> dict[str, Any]:
    parts: dict[str, Any] = {}
    for role, where in (("proxy", f":{proxy_port}"), ("registry", registry)):
        info = plane.find(role)
        state = (info or {}).get("State") or {}
        parts[role] = {
            "container": plane.container_name(role),
            "listens": where,
            "running": bool(state.get("Running")) and not state.get("Restarting"),
            "image": (info or {}).get("Config", {}).get("Image", ""),
            "started_at": state.get("StartedAt"),
            "restarts": (info or {}).get("RestartCount", 0),
        }
    used, capacity = engine.pool_usage()
    return {
        "installation": engine.installation,
        "data_plane": parts,
        "engine": {"live_restore": engine.live_restore()},
        "network_pool": {"pool": engine.pool.network, "prefix": engine.pool.prefix, "used": used,
                         "capacity": capacity},
    }
