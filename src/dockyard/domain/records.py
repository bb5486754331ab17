"""A release as the store keeps it (``ReleaseRecord``), and the services in it read back from
their stored JSON: what the services get from the store, never rows or dicts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from dockyard.domain.model import ReleaseStatus, ServiceSpec

_SERVICE_FIELDS = frozenset(f.name for f in fields(ServiceSpec))


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def service_from_dict(data: Mapping[str, Any]) -> ServiceSpec:
    """A ServiceSpec back from its stored JSON form (lists are tuples again; keys a newer
    dockyard wrote and this one does not know are left out)."""
    return ServiceSpec(**{k: _tuples(v) for k, v in data.items() if k in _SERVICE_FIELDS})


@dataclass(frozen=True)
class ReleaseRecord:
    """One release of an app's environment: what it runs (``services``, configured for the
    environment and pinned by digest), its artifact (the commit's services pinned by digest,
    before any environment's configuration) and the configuration it used (variable names and
    secret versions, never values)."""

    id: int
    app: str
    environment: str
    commit: str
    status: ReleaseStatus
    services: tuple[ServiceSpec, ...] = ()
    artifact: tuple[ServiceSpec, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    timeline: Mapping[str, Any] = field(default_factory=dict)  # domain/value_stream.py: commits, push, build
    job_id: int | None = None
    error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(h for s in self.services for h in s.hosts)

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape answers and clients know."""
        return {
            "id": self.id, "app": self.app, "environment": self.environment, "commit": self.commit,
            "status": str(self.status), "services": [asdict(s) for s in self.services],
            "artifact": [asdict(s) for s in self.artifact], "config": dict(self.config), "job_id": self.job_id,
            "error": self.error, "created_at": self.created_at, "finished_at": self.finished_at,
        }


def release_from_row(row: Mapping[str, Any], services: list[Any], artifact: list[Any],
                     config: Mapping[str, Any]) -> ReleaseRecord:
    """A record from a stored row whose JSON columns are already read."""
    return ReleaseRecord(
        id=int(row["id"]), app=str(row["app"]), environment=str(row["environment"]), commit=str(row["commit"]),
        status=ReleaseStatus(row["status"]), services=tuple(service_from_dict(s) for s in services),
        artifact=tuple(service_from_dict(s) for s in artifact), config=dict(config), job_id=row.get("job_id"),
        error=row.get("error"), created_at=row.get("created_at"), finished_at=row.get("finished_at"),
        timeline=json.loads(row.get("timeline") or "{}"),
    )
