"""API and git tokens."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.entrypoints.deps import Origin, PlatformDep, TokenManager
from dockyard.services.events import Event

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    name: str
    role: Literal["developer", "approver", "admin"] = Field(
        "admin", description="the role of the user the token creates (when ``user`` is not given)")
    user: str | None = Field(None, description="the user the token belongs to; default: a new user named as the token")


@router.get("")
def list_tokens(p: PlatformDep, _: TokenManager) -> list[dict[str, Any]]:
    """Each token's name, role, creation and last use; never the token."""
    return [asdict(t) for t in p.access.tokens()]


@router.post("", status_code=201)
def create_token(body: TokenIn, p: PlatformDep, who: TokenManager, source: Origin) -> dict[str, str]:
    """A new API and git token; the answer is the only time it is shown."""
    token = p.access.create(body.name, body.role, body.user)
    holder = {"user": body.user} if body.user else {"user": body.name, "role": body.role}  # role: when no user named
    p.events.publish(Event("token.created", who.name, source, detail={"token": body.name, **holder}))
    return {"name": body.name, "token": token}


@router.delete("/{name}", status_code=204)
def revoke_token(name: str, p: PlatformDep, who: TokenManager, source: Origin) -> None:
    p.access.revoke(name)
    p.events.publish(Event("token.revoked", who.name, source, detail={"token": name}))
