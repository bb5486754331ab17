"""Approvals: the releases waiting to enter the next environment of their stage graph, and the
approvers' decisions (services/promotion.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from dockyard.domain.access import Action, Principal
from dockyard.entrypoints.deps import Origin, PlatformDep, require

router = APIRouter(tags=["approvals"])
Approver = Annotated[Principal, require(Action.APPROVE)]
AnyReader = Annotated[Principal, require(Action.READ, app_param=None)]


class DecisionIn(BaseModel):
    comment: str = Field("", max_length=1000)


@router.get("/api/v1/approvals")
def waiting(p: PlatformDep, _: AnyReader, app: str | None = None) -> list[dict[str, Any]]:
    """The releases waiting for their gates (approvals, soak time), with what each waits for:
    "approval by alice, bob (0 of 1)"."""
    return p.promotions.waiting(app)


@router.post("/api/v1/apps/{name}/environments/{env}/candidates/{release}/approve")
def approve(name: str, env: str, release: int, body: DecisionIn, p: PlatformDep, who: Approver,
            source: Origin) -> dict[str, Any]:
    """Approve release RELEASE (its id upstream) to enter ENV: it is promoted once every gate passes."""
    return p.promotions.decide(name, env, release, who, True, body.comment, source)


@router.post("/api/v1/apps/{name}/environments/{env}/candidates/{release}/reject")
def reject(name: str, env: str, release: int, body: DecisionIn, p: PlatformDep, who: Approver,
           source: Origin) -> dict[str, Any]:
    """Reject release RELEASE for ENV: it will not enter it (a newer release may)."""
    return p.promotions.decide(name, env, release, who, False, body.comment, source)
