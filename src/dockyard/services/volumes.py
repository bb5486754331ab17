"""An app's named volumes: listed with their sizes, removed only on an explicit, confirmed call.
No deploy and no failed release ever removes one."""

from __future__ import annotations

from dockyard.domain import names
from dockyard.domain.errors import DockyardError
from dockyard.domain.model import Volume
from dockyard.ports import AppStore, Orchestrator


def list_volumes(store: AppStore, orchestrator: Orchestrator, app: str, environment: str) -> list[Volume]:
    store.get_app(names.app_name(app))
    return orchestrator.volumes(app, names.environment_name(environment))


def remove_volume(store: AppStore, orchestrator: Orchestrator, app: str, environment: str, name: str,
                  confirm: str) -> None:
    """Remove one volume and its data. ``confirm`` must repeat its name: a slip of the keyboard
    must not lose a database."""
    store.get_app(names.app_name(app))
    if confirm != name:
        raise DockyardError(f"removing volume {name!r} of {app} deletes its data for good: not confirmed",
                            f"confirm with the volume's name: dockyard volumes rm {app} {name} --env {environment}")
    orchestrator.remove_volume(app, names.environment_name(environment), name)
