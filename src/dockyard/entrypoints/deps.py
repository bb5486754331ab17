"""What every route depends on: the platform, who is calling, and whether they may."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from dockyard import bootstrap
from dockyard.domain import access
from dockyard.domain.access import Action, Principal
from dockyard.domain.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False)


class ErrorOut(BaseModel):
    error: str
    hint: str = ""


def get_platform(request: Request) -> bootstrap.Platform:
    p: bootstrap.Platform = request.app.state.platform
    return p


PlatformDep = Annotated[bootstrap.Platform, Depends(get_platform)]


def authenticated(p: PlatformDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if creds is None:
        raise Unauthorized("missing token", "send 'Authorization: Bearer <token>' (set DOCKYARD_TOKEN)")
    return p.access.authenticate(creds.credentials)


Authenticated = Annotated[Principal, Depends(authenticated)]


def authorize(who: Principal, action: Action, app: str | None = None) -> None:
    """Raise Forbidden unless ``who`` may do ``action`` (on ``app``)."""
    if not access.allowed(who, action, app):
        raise Forbidden(*access.refusal(who, action))


def can(action: Action, app_param: str | None = "name") -> Any:
    """A dependency: the caller, once allowed to do ``action`` (on the app the path parameter
    ``app_param`` names, when the path has one)."""

    def check(request: Request, who: Authenticated) -> Principal:
        authorize(who, action, request.path_params.get(app_param) if app_param else None)
        return who

    return Depends(check)


def actor(who: Principal, app: str, pusher: str | None) -> str:
    """Who a job is recorded as: the caller; only the git hook names a pusher, and only its own."""
    if pusher is not None:
        authorize(who, Action.SET_PUSHER, app)
        if pusher != who.name:
            raise Forbidden(f"pusher {pusher[:64]!r} is not who pushed ({who.name})",
                            "the hook token records the pusher it was minted for")
    return who.name


Reader = Annotated[Principal, can(Action.READ)]
AppManager = Annotated[Principal, can(Action.MANAGE_APPS)]
TokenManager = Annotated[Principal, can(Action.MANAGE_TOKENS, app_param=None)]
SystemReader = Annotated[Principal, can(Action.READ, app_param=None)]
