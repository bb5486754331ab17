"""Users and their roles: developer, approver, admin (domain/access.py)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.domain.access import Action, Principal
from dockyard.entrypoints.deps import Origin, PlatformDep, require
from dockyard.services.events import Event

router = APIRouter(prefix="/api/v1/users", tags=["users"])
UserManager = Annotated[Principal, require(Action.MANAGE_USERS, app_param=None)]
Role = Literal["developer", "approver", "admin"]


class UserIn(BaseModel):
    name: str
    role: Role = Field(description="developer: push, deploy and configure unprotected environments; approver: "
                                   "that, and approve releases; admin: everything")


class RoleIn(BaseModel):
    role: Role


@router.get("")
def list_users(p: PlatformDep, _: UserManager) -> list[dict[str, Any]]:
    """Each user's name, role, creation and how many tokens they hold."""
    return [asdict(u) for u in p.access.users()]


@router.post("", status_code=201)
def add_user(body: UserIn, p: PlatformDep, who: UserManager, source: Origin) -> dict[str, str]:
    """A new user, with a first token named as the user: the answer is the only time it is shown."""
    user, token = p.access.add_user(body.name, body.role)
    p.events.publish(Event("user.created", who.name, source, detail={"user": user.name, "role": user.role}))
    return {"name": user.name, "role": user.role, "token": token}


@router.put("/{user}/role")
def set_role(user: str, body: RoleIn, p: PlatformDep, who: UserManager, source: Origin) -> dict[str, Any]:
    """Change a user's role (every token of theirs follows); the last admin stays admin."""
    changed = p.access.set_role(user, body.role)
    p.events.publish(Event("user.role_changed", who.name, source, detail={"user": changed.name, "role": changed.role}))
    return asdict(changed)


@router.delete("/{user}", status_code=204)
def remove_user(user: str, p: PlatformDep, who: UserManager, source: Origin) -> None:
    """Remove a user and revoke every token of theirs; the last admin cannot be removed."""
    p.access.remove_user(user)
    p.events.publish(Event("user.removed", who.name, source, detail={"user": user}))
