"""Who may do what. A role is the set of actions it allows; one function, `allowed`, decides.

Users have a role each: a developer pushes, deploys, rolls back, scales and configures the
environments that are not protected; an approver does what a developer does and approves
releases; an admin does everything, protected environments included. A protected environment
turns an action into its protected form (``PROTECTED``), which only admins have.

A principal bound to an app (the hook token of a push) acts on that app only, and in a protected
environment only as far as the user who pushed may (``Principal.pusher_role``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.StrEnum):
    READ = "read apps, jobs, images, releases and logs"
    READ_JOB_LOG = "read a job's log"
    MANAGE_APPS = "create, change or delete apps"
    PUSH = "push to an app's repository"
    DEPLOY = "deploy, roll back or scale an environment, or act on its release"
    DEPLOY_PROTECTED = "deploy, roll back or scale a protected environment, or act on its release"
    CONFIGURE = "set an environment's variables and secrets"
    CONFIGURE_PROTECTED = "set a protected environment's variables and secrets"
    APPROVE = "approve or reject a release"
    RECORD_REJECTED_PUSH = "record a refused push"
    CHECK_PUSH = "check a push being received, and queue its deploys"
    SET_PUSHER = "set who pushed"
    MANAGE_TOKENS = "create, list or revoke tokens"
    MANAGE_USERS = "create, change or remove users"
    GRANT_HOST_ACCESS = "allow host access to an app's containers"
    COLLECT_GARBAGE = "remove images outside retention (dockyard gc)"
    READ_AUDIT = "read the audit log"


# What an action becomes in a protected environment.
PROTECTED: dict[Action, Action] = {Action.DEPLOY: Action.DEPLOY_PROTECTED, Action.CONFIGURE: Action.CONFIGURE_PROTECTED}

ADMIN = "admin"
APPROVER = "approver"
DEVELOPER = "developer"
HOOK = "hook"  # dockyard's git hook, during one push: a token minted for that push only
USER_ROLES = (DEVELOPER, APPROVER, ADMIN)  # the roles a user can have

_DEVELOPER = frozenset({Action.READ, Action.READ_JOB_LOG, Action.PUSH, Action.DEPLOY, Action.CONFIGURE})
ROLES: dict[str, frozenset[Action]] = {
    ADMIN: frozenset(Action) - {Action.SET_PUSHER},
    APPROVER: _DEVELOPER | {Action.APPROVE},
    DEVELOPER: _DEVELOPER,
    HOOK: frozenset({Action.DEPLOY, Action.CHECK_PUSH, Action.RECORD_REJECTED_PUSH, Action.READ_JOB_LOG,
                     Action.SET_PUSHER}),
}


@dataclass(frozen=True)
class Principal:
    name: str  # the user; for a hook token, who pushed
    role: str
    app: str | None = None  # set: may act on this app only
    pusher_role: str = ""  # a hook token's: the role of the user who pushed


def allowed(who: Principal, action: Action, app: str | None = None, protected: bool = False) -> bool:
    """Whether ``who`` may do ``action`` (on ``app``, when the action is about one; in a
    protected environment, when ``protected``)."""
    if who.app is not None and who.app != app:
        return False
    if protected and action in PROTECTED:
        if who.role == HOOK:  # a push deploys there only if the user who pushed may
            return action in ROLES[HOOK] and PROTECTED[action] in ROLES.get(who.pusher_role, frozenset())
        action = PROTECTED[action]
    return action in ROLES.get(who.role, frozenset())


def refusal(who: Principal, action: Action, protected: bool = False) -> tuple[str, str]:
    """Why ``who`` may not do ``action``, and what to do instead: (message, hint)."""
    if action is Action.SET_PUSHER:
        return ("only dockyard's git hook may set pusher",
                "leave 'pusher' out: the job records the name of the token that asked for it")
    if protected and action in PROTECTED:
        role = who.pusher_role if who.role == HOOK else who.role
        return (f"the environment is protected: {who.name} (role {role or 'unknown'}) may not {action.value} there",
                "an admin deploys a protected environment; a release reaches it by approval (dockyard approvals)")
    if who.role == HOOK:
        return (f"a push's hook token may only check its push to {who.app}, queue its deploys, record a refused "
                "push and read that app's job logs",
                "use an API token for anything else (an admin creates one: dockyard tokens create NAME)")
    return (f"{who.name} (role {who.role}) may not {action.value}",
            "ask an admin for a role that allows it: dockyard users set-role NAME ROLE")
