"""What runs dockyard on this host, as a user asks `dockyard system`: the data plane's
containers, the engine's live-restore, and how full the network pool is; and the server's health
(no token needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from dockyard import __version__


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


class PartView(Protocol):
    """A part of the data plane (the proxy, the registry) as health shows it."""

    @property
    def running(self) -> bool: ...


class RegistryView(PartView, Protocol):
    @property
    def address(self) -> str: ...


@dataclass
class System:
    plane: DataPlaneView
    engine: EngineView
    registry: RegistryView
    proxy: PartView
    proxy_port: int
    resolver: str = ""  # where the proxy's resolver answers (udp/127.0.0.1:PORT); "": none

    def health(self) -> dict[str, Any]:
        """Liveness of dockyard and of the parts it supervises."""
        return {
            "version": __version__,
            "installation": self.engine.installation,
            "registry": {"address": self.registry.address, "running": self.registry.running},
            "proxy": {"port": self.proxy_port, "running": self.proxy.running},
        }

    @property
    def registry_address(self) -> str:
        """host:port of dockyard's registry, as image references name it."""
        return self.registry.address

    def status(self) -> dict[str, Any]:
        """The data plane's containers, the engine's live-restore, the network pool's use."""
        return status(self.plane, self.engine, self.proxy_port, self.registry.address, self.resolver)

    def live_restore(self) -> bool:
        """Whether the engine keeps containers running while it restarts."""
        return self.engine.live_restore()


def status(plane: DataPlaneView, engine: EngineView, proxy_port: int, registry: str,
           resolver: str = "") -> dict[str, Any]:
    parts: dict[str, Any] = {}
    roles = [("proxy", f":{proxy_port}"), ("registry", registry)] + ([("resolver", resolver)] if resolver else [])
    for role, where in roles:
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
