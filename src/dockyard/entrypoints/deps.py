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
from dockyard.domain.model import DEFAULT_ENVIRONMENT
from dockyard.services.events import ACCESS_DENIED, Event

bearer = HTTPBearer(auto_error=False)


class ErrorOut(BaseModel):
    error: str
    hint: str = ""


def get_platform(request: Request) -> bootstrap.Platform:
    p: bootstrap.Platform = request.app.state.platform
    return p


PlatformDep = Annotated[bootstrap.Platform, Depends(get_platform)]


def authenticated(request: Request, p: PlatformDep,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if creds is None:
        raise Unauthorized("missing token", "send 'Authorization: Bearer <token>' (set DOCKYARD_TOKEN)")
    who = p.access.authenticate(creds.credentials)
    request.state.principal = who  # for the audit log, should the request be denied (``denied``)
    return who


Authenticated = Annotated[Principal, Depends(authenticated)]


def origin(request: Request) -> str:
    """Where a request comes from, as the audit log records it: the client's address."""
    return request.client.host if request.client else "unknown"


Origin = Annotated[str, Depends(origin)]


class Denied(Forbidden):
    """A permission check's refusal: a 403 naming the action refused (and its app)."""

    def __init__(self, action: Action, app: str | None, message: str, hint: str = "") -> None:
        super().__init__(message, hint)
        self.action = action
        self.app = app


def denied(request: Request, error: Forbidden) -> None:
    """Every 403 the API answers, told to the platform's listeners as ``access.denied`` (the
    audit log records it): who, from where, on which app and environment, the action and why."""
    who: Principal | None = getattr(request.state, "principal", None)
    check = error if isinstance(error, Denied) else None
    detail = {"action": check.action.value if check else "", "reason": error.message,
              "request": f"{request.method} {request.url.path}"[:300]}
    get_platform(request).events.publish(Event(
        ACCESS_DENIED, who.name if who is not None else "unknown", origin(request), check.app if check else None,
        request.path_params.get("env") or request.path_params.get("environment"), detail))


def authorize(who: Principal, action: Action, app: str | None = None, protected: bool = False) -> None:
    """Raise Forbidden unless ``who`` may do ``action`` (on ``app``; in a protected environment)."""
    if not access.allowed(who, action, app, protected):
        raise Denied(access.PROTECTED.get(action, action) if protected else action, app,
                     *access.refusal(who, action, protected))


def require(action: Action, app_param: str | None = "name") -> Any:
    """The one permission check, as a dependency: the caller, once allowed to do ``action`` on
    the app the path parameter ``app_param`` names (when the path has one), in the environment
    the path names (``env`` or ``environment``; else production), protected or not."""

    def check(request: Request, p: PlatformDep, who: Authenticated) -> Principal:
        app = request.path_params.get(app_param) if app_param else None
        protected = False
        if app is not None and action in access.PROTECTED:
            env = request.path_params.get("env") or request.path_params.get("environment") or DEFAULT_ENVIRONMENT
            protected = p.environments.is_protected(app, env)
        authorize(who, action, app, protected)
        return who

    return Depends(check)


def actor(who: Principal, app: str, pusher: str | None) -> str:
    """Who a job is recorded as: the caller; only the git hook names a pusher, and only its own."""
    if pusher is not None:
        authorize(who, Action.SET_PUSHER, app)
        if pusher != who.name:
            raise Denied(Action.SET_PUSHER, app, f"pusher {pusher[:64]!r} is not who pushed ({who.name})",
                         "the hook token records the pusher it was minted for")
    return who.name


Reader = Annotated[Principal, require(Action.READ)]
AppManager = Annotated[Principal, require(Action.MANAGE_APPS)]
TokenManager = Annotated[Principal, require(Action.MANAGE_TOKENS, app_param=None)]
SystemReader = Annotated[Principal, require(Action.READ, app_param=None)]
