"""What runs dockyard on this host, as a user asks `dockyard system`: the data plane's
containers, the engine's live-restore, and how full the network pool is."""

from __future__ import annotations

from typing import Any, Protocol


class DataPlaneView(Protocol):
    def container_name(self, role: str) -> str: ...
    def find(self, role: str) -> dict[str, Any] | None: ...


class PoolView(Protocol):
    @property
    def network(self) -> str: ...
    @property
    def prefix(self) -> int: ...


class EngineView(Protocol):
    @property
    def installation(self) -> str: ...
    @property
    def pool(self) -> PoolView: ...

    def pool_usage(self) -> tuple[int, int]: ...
    def live_restore(self) -> bool: ...


def status(plane: DataPlaneView, engine: EngineView, proxy_port: int, registry: str) -> dict[str, Any]:
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
