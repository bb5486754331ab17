"""dockyard's own errors: each says what went wrong and what to do next."""

from __future__ import annotations


class DockyardError(Exception):
    """Base error. `hint` tells the user what to do next."""

    status = 400

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class InvalidName(DockyardError):
    pass


class InvalidSource(DockyardError):
    """The pushed source cannot be built: no Dockerfile, a malformed header, a bad compose file."""


class NotFound(DockyardError):
    status = 404


class Conflict(DockyardError):
    status = 409


class Unauthorized(DockyardError):
    status = 401


class Forbidden(DockyardError):
    """The token is valid but may not do this."""

    status = 403


class BuildFailed(DockyardError):
    status = 422


class DeployFailed(DockyardError):
    status = 422


class Unavailable(DockyardError):
    """A component dockyard needs (engine, registry, proxy, git) does not answer."""

    status = 503


def shown(value: str, limit: int = 200) -> str:
    """A user-supplied value as a message quotes it: repr, cut short."""
    return repr(value) if len(value) <= limit else repr(value[: limit - 3] + "...")
