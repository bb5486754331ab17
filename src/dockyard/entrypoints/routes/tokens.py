"""API and git tokens."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.entrypoints.deps import PlatformDep, TokenManager

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    name: str
    role: Literal["admin"] = Field("admin", description="roles beyond admin come with approvals")


@router.get("")
def list_tokens(p: PlatformDep, _: TokenManager) -> list[dict[str, Any]]:
    """Each token's name, role, creation and last use; never the token."""
    return [asdict(t) for t in p.access.tokens()]


@router.post("", status_code=201)
def create_token(body: TokenIn, p: PlatformDep, _: TokenManager) -> dict[str, str]:
    """A new API and git token; the answer is the only time it is shown."""
    return {"name": body.name, "token": p.access.create(body.name, body.role)}


@router.delete("/{name}", status_code=204)
def revoke_token(name: str, p: PlatformDep, _: TokenManager) -> None:
    p.access.revoke(name)
