"""Who calls: API and git tokens (verified, listed, created, revoked) and the hook tokens of the
pushes in flight. What a caller may do is ``domain/access.py``'s to decide."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.domain import names
from dockyard.domain.access import ADMIN, USER_ROLES, Principal
from dockyard.domain.errors import DockyardError, Unauthorized
from dockyard.domain.model import Token, User
from dockyard.ports import TokenStore
from dockyard.services.push_tokens import PREFIX as PUSH_TOKEN_PREFIX
from dockyard.services.push_tokens import PushTokens


@dataclass
class Access:
    store: TokenStore
    push_tokens: PushTokens = field(default_factory=PushTokens)  # hook tokens of pushes in flight

    # -- who calls ------------------------------------------------------------------------
    def authenticate(self, token: str) -> Principal:
        """The caller a bearer token names: a push's hook token (bound to its app and pusher) or an
        API token; Unauthorized otherwise."""
        if token.startswith(PUSH_TOKEN_PREFIX):
            hook = self.push_tokens.verify(token)
            if hook is None:
                raise Unauthorized("expired hook token", "a push's hook token ends with the push: push again")
            return hook
        found = self.verify(token)
        if found is None:
            raise Unauthorized("invalid token", "check DOCKYARD_TOKEN; an admin can create one: dockyard tokens create")
        return found

    def verify(self, token: str) -> Principal | None:
        """The API token's holder, or None (a hook token is no API token: git refuses it)."""
        found = self.store.verify_token(token)
        return Principal(name=found.user or found.name, role=found.role) if found is not None else None

    # -- API and git tokens ---------------------------------------------------------------
    def tokens(self) -> list[Token]:
        """Each token's name, role and dates; never the token."""
        return self.store.list_tokens()

    def create(self, name: str, role: str = ADMIN, user: str | None = None) -> str:
        """A new token, for ``user`` (default: a user named as the token, with ``role``); the answer
        is the only time it is shown."""
        return self.store.create_token(names.token_name(name), _role(role), names.token_name(user) if user else None)

    def revoke(self, name: str) -> None:
        self.store.revoke_token(name)

    # -- users ----------------------------------------------------------------------------
    def users(self) -> list[User]:
        return self.store.list_users()

    def add_user(self, name: str, role: str) -> tuple[User, str]:
        """A new user and a first token of theirs (named as the user), shown only now."""
        user = self.store.create_user(names.token_name(name), _role(role))
        return user, self.store.create_token(user.name, user.role, user.name)

    def set_role(self, name: str, role: str) -> User:
        """Refused for the last admin: an installation always keeps one."""
        return self.store.set_user_role(names.token_name(name), _role(role))

    def remove_user(self, name: str) -> None:
        """The user and their tokens; refused for the last admin."""
        self.store.remove_user(names.token_name(name))

    def first_admin(self) -> str | None:
        """At the first start, the admin token (created); None once any token exists."""
        if self.store.token_count():
            return None
        return self.store.create_token(ADMIN, ADMIN)

    # -- a push's hooks -------------------------------------------------------------------
    def mint_hook_token(self, app: str, pusher: str, role: str = "") -> str:
        """A token good for this push's hooks only (its app, its pusher and the pusher's role),
        until revoked or expired."""
        return self.push_tokens.mint(app, pusher, role)

    def revoke_hook_token(self, token: str) -> None:
        self.push_tokens.revoke(token)


def _role(role: str) -> str:
    if role not in USER_ROLES:
        raise DockyardError(f"unknown role {role[:32]!r}", f"a user's role is one of: {', '.join(USER_ROLES)}")
    return role
