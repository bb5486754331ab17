"""Who may do what: an admin anything but naming a pusher; a push's hook token only the deploy of
its push, a refused push and its app's job logs; hook tokens are bound, revocable and expire."""

from __future__ import annotations

import pytest

from dockyard.domain import access
from dockyard.domain.access import Action, Principal
from dockyard.services.push_tokens import PREFIX, PushTokens

ADMIN = Principal("admin", "admin")
HOOK = Principal("alice", "hook", app="shop")
HOOK_ACTIONS = {Action.DEPLOY, Action.CHECK_PUSH, Action.RECORD_REJECTED_PUSH, Action.READ_JOB_LOG, Action.SET_PUSHER}


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("app", [None, "shop", "blog"])
def test_an_admin_may_do_anything_but_name_a_pusher(action: Action, app: str | None) -> None:
    assert access.allowed(ADMIN, action, app) is (action is not Action.SET_PUSHER)


@pytest.mark.parametrize("action", sorted(HOOK_ACTIONS))
def test_a_hook_token_may_do_the_push_s_work_on_its_app(action: Action) -> None:
    assert access.allowed(HOOK, action, "shop")


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("app", [None, "blog", "shop-x", "sho", ""])
def test_a_hook_token_may_do_nothing_on_another_app(action: Action, app: str | None) -> None:
    assert not access.allowed(HOOK, action, app)


@pytest.mark.parametrize("action", sorted(set(Action) - HOOK_ACTIONS))
def test_a_hook_token_may_do_nothing_else_even_on_its_app(action: Action) -> None:
    assert not access.allowed(HOOK, action, "shop")


@pytest.mark.parametrize("role", ["", "viewer", "Admin", "hook "])
def test_an_unknown_role_may_do_nothing(role: str) -> None:
    assert not any(access.allowed(Principal("x", role), action, app) for action in Action for app in (None, "shop"))


def test_an_admin_bound_to_an_app_acts_on_that_app_only() -> None:
    """Binding is orthogonal to the role: later app-scoped tokens slot in."""
    bound = Principal("ci", "admin", app="shop")
    assert access.allowed(bound, Action.MANAGE_APPS, "shop")
    assert not access.allowed(bound, Action.MANAGE_APPS, "blog")
    assert not access.allowed(bound, Action.MANAGE_TOKENS)


def test_refusals_say_what_to_do() -> None:
    message, hint = access.refusal(ADMIN, Action.SET_PUSHER)
    assert message == "only dockyard's git hook may set pusher" and "leave 'pusher' out" in hint
    message, hint = access.refusal(HOOK, Action.MANAGE_TOKENS)
    assert "hook token may only check its push to shop, queue its deploys" in message
    assert "dockyard tokens create" in hint
    message, hint = access.refusal(Principal("bob", "viewer"), Action.DEPLOY)
    assert message == "bob (role viewer) may not deploy, roll back or scale an environment, or act on its release"
    assert "dockyard users set-role" in hint
    message, hint = access.refusal(Principal("dev", "developer"), Action.DEPLOY, protected=True)
    assert message.startswith("the environment is protected: dev (role developer) may not deploy") and "admin" in hint


# -- roles and protected environments ----------------------------------------------------------
DEVELOPER = Principal("dev", "developer")
APPROVER = Principal("ann", "approver")
DEVELOPER_ACTIONS = {Action.READ, Action.READ_JOB_LOG, Action.PUSH, Action.DEPLOY, Action.CONFIGURE}


@pytest.mark.parametrize("action", list(Action))
def test_a_developer_pushes_deploys_and_configures_what_is_not_protected(action: Action) -> None:
    assert access.allowed(DEVELOPER, action, "shop") is (action in DEVELOPER_ACTIONS)
    assert access.allowed(APPROVER, action, "shop") is (action in DEVELOPER_ACTIONS | {Action.APPROVE})


@pytest.mark.parametrize("action", sorted(access.PROTECTED))
def test_a_protected_environment_takes_deploys_and_configuration_from_admins_only(action: Action) -> None:
    assert access.allowed(ADMIN, action, "shop", protected=True)
    assert not access.allowed(DEVELOPER, action, "shop", protected=True)
    assert not access.allowed(APPROVER, action, "shop", protected=True)  # approvers approve; they do not deploy
    assert access.allowed(DEVELOPER, action, "shop", protected=False)


def test_protection_changes_nothing_for_other_actions() -> None:
    for action in set(Action) - set(access.PROTECTED):
        for who in (ADMIN, DEVELOPER, APPROVER, HOOK):
            assert access.allowed(who, action, "shop", True) is access.allowed(who, action, "shop", False)


def test_a_push_deploys_a_protected_environment_only_as_far_as_its_pusher_may() -> None:
    by_developer = Principal("dev", "hook", app="shop", pusher_role="developer")
    by_admin = Principal("root", "hook", app="shop", pusher_role="admin")
    assert access.allowed(by_developer, Action.DEPLOY, "shop") and access.allowed(by_admin, Action.DEPLOY, "shop")
    assert not access.allowed(by_developer, Action.DEPLOY, "shop", protected=True)
    assert access.allowed(by_admin, Action.DEPLOY, "shop", protected=True)
    assert not access.allowed(by_admin, Action.DEPLOY, "blog", protected=True)  # still its app only
    assert not access.allowed(by_admin, Action.CONFIGURE, "shop", protected=True)  # still the hook's actions only
    assert not access.allowed(Principal("x", "hook", app="shop"), Action.DEPLOY, "shop", protected=True)


# -- push tokens ------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_push_token_is_bound_to_its_app_and_pusher() -> None:
    tokens = PushTokens()
    token = tokens.mint("shop", "alice")
    assert token.startswith(PREFIX) and len(token) > len(PREFIX) + 40
    assert tokens.verify(token) == Principal("alice", "hook", app="shop")
    assert tokens.verify(tokens.mint("shop", "bob", "developer")) == Principal("bob", "hook", "shop", "developer")
    assert tokens.verify(token + "x") is None
    assert tokens.verify(token[:-1]) is None
    assert tokens.verify("") is None


def test_every_push_gets_its_own_token() -> None:
    tokens = PushTokens()
    a, b = tokens.mint("shop", "alice"), tokens.mint("blog", "bob")
    assert a != b
    assert tokens.verify(a) == Principal("alice", "hook", app="shop")
    assert tokens.verify(b) == Principal("bob", "hook", app="blog")


def test_a_revoked_push_token_is_refused() -> None:
    tokens = PushTokens()
    token, other = tokens.mint("shop", "alice"), tokens.mint("shop", "alice")
    tokens.revoke(token)
    tokens.revoke(token)  # twice: nothing left to do
    tokens.revoke("never-minted")
    assert tokens.verify(token) is None
    assert tokens.verify(other) is not None
    assert len(tokens) == 1


def test_a_push_token_expires_and_expired_ones_are_dropped() -> None:
    clock = Clock()
    tokens = PushTokens(ttl=60, clock=clock)
    token = tokens.mint("shop", "alice")
    clock.now += 59.9
    assert tokens.verify(token) is not None
    clock.now += 0.1
    assert tokens.verify(token) is None
    tokens.mint("shop", "bob")  # minting drops the expired
    assert len(tokens) == 1
