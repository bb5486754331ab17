"""The audit log: its entries, newest first, and the verification of its hash chain (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from dockyard.domain.access import Action, Principal
from dockyard.domain.audit import AuditEntry
from dockyard.entrypoints.deps import PlatformDep, require

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
AuditReader = Annotated[Principal, require(Action.READ_AUDIT, app_param=None)]


class AuditEntryOut(BaseModel):
    id: int
    at: str = Field(description="when, ISO 8601 UTC, exactly as hashed")
    actor: str = Field(description="who: a user, a token, who pushed, or 'dockyard' for the server's own work")
    source: str = Field(description="from where: the caller's address, 'git push', or 'dockyard'")
    action: str = Field(description="what: token.created, variable.set, deploy.queued, access.denied...",
                        examples=["token.created"])
    app: str | None
    environment: str | None
    detail: dict[str, Any] = Field(description="names and ids, never a secret's value")
    prev_hash: str = Field(description="the hash of the entry before (64 zeros for the first)")
    hash: str = Field(description="SHA-256 of this entry's fields and prev_hash")


class AuditVerifyOut(BaseModel):
    ok: bool
    entries: int = Field(description="entries checked, oldest first (all of them when ok)")
    first_broken: int | None = Field(description="the first entry where the chain breaks")
    reason: str = Field(description="why it breaks there")
    head: str = Field(description="when ok, the newest entry's hash: note it elsewhere to tell later that no "
                                  "entry was cut off the end")


def entry_out(e: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(id=e.id, at=e.at, actor=e.actor, source=e.source, action=e.action, app=e.app,
                         environment=e.environment, detail=dict(e.detail), prev_hash=e.prev_hash, hash=e.hash)


@router.get("")
def list_entries(p: PlatformDep, _: AuditReader, app: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                 before: Annotated[int | None, Query(description="entries older than this id (the next page)")] = None,
                 ) -> list[AuditEntryOut]:
    """What happened, newest first (admin only): pushes, deploys, rollbacks, releases acted on,
    variables and secrets changed (names only), tokens and users, apps and environments, denied
    requests. Each entry says who, when, what and from where, and hashes the entry before it."""
    return [entry_out(e) for e in p.audit.entries(app, limit, before)]


@router.get("/verify")
def verify(p: PlatformDep, _: AuditReader) -> AuditVerifyOut:
    """Check the whole chain, oldest first (admin only): each entry's hash, and its link to the
    entry before. A changed entry is named by its id; a removed one by the entry after it."""
    return AuditVerifyOut.model_validate(p.audit.verify())
