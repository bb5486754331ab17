"""Who may do what. A role is the set of actions it allows; one function, `allowed`, decides.

A principal bound to an app (the hook token of a push) acts on that app only. New roles (a
deployer, a viewer, an approver) are new rows in ROLES.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.StrEnum):
    READ = "read apps, jobs, images, releases and logs"
    READ_JOB_LOG = "read a job's log"
    MANAGE_APPS = "create, change or delete apps"
    DEPLOY = "queue a deploy"
    RECORD_REJECTED_PUSH = "record a refused push"
    CHECK_PUSH = "check a push being received, and queue its deploys"
    SET_PUSHER = "set who pushed"
    MANAGE_TOKENS = "create, list or revoke tokens"
    GRANT_HOST_ACCESS = "allow host access to an app's containers"
    COLLECT_GARBAGE = "remove images outside retention (dockyard gc)"


ADMIN = "admin"
HOOK = "hook"  # dockyard's git hook, during one push: a token minted for that push only

ROLES: dict[str, frozenset[Action]] = {
    ADMIN: frozenset(Action) - {Action.SET_PUSHER},
    HOOK: frozenset({Action.DEPLOY, Action.CHECK_PUSH, Action.RECORD_REJECTED_PUSH, Action.READ_JOB_LOG,
                     Action.SET_PUSHER}),
}


@dataclass(frozen=True)
class Principal:
    name: str  # the token's name; for a hook token, who pushed
    role: str
    app: str | None = None  # set: may act on this app only


def allowed(who: Principal, action: Action, app: str | None = None) -> bool:
    """Whether ``who`` may do ``action`` (on ``app``, when the action is about one)."""
    if action not in ROLES.get(who.role, frozenset()):
        return False
    return who.app is None or who.app == app


def refusal(who: Principal, action: Action) -> tuple[str, str]:
    """Why ``who`` may not do ``action``, and what to do instead: (message, hint)."""
    if action is Action.SET_PUSHER:
        return ("only dockyard's git hook may set pusher",
                "leave 'pusher' out: the job records the name of the token that asked for it")
    if who.role == HOOK:
        return (f"a push's hook token may only check its push to {who.app}, queue its deploys, record a refused "
                "push and read that app's job logs",
                "use an API token for anything else (an admin creates one: dockyard tokens create NAME)")
    return (f"token {who.name!r} (role {who.role}) may not {action.value}",
            "ask an admin for a token whose role allows it")
