"""Variables and secrets of an app's environment, and the secrets key. No route ever answers a
secret's value: a secret is told by name, version and dates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from dockyard import bootstrap
from dockyard.domain.access import Action, Principal
from dockyard.domain.model import SecretVersion
from dockyard.entrypoints.deps import Origin, PlatformDep, Reader, require
from dockyard.services.events import Event

router = APIRouter(prefix="/api/v1/apps/{name}/environments/{environment}")
key_router = APIRouter(prefix="/api/v1/secrets-key", tags=["secrets"])
# developers configure the environments that are not protected; admins every one
Configurer = Annotated[Principal, require(Action.CONFIGURE)]

# Rotating the key touches every app's secrets: only who may manage tokens (an admin) may.
KeyManager = Annotated[Principal, require(Action.MANAGE_TOKENS, app_param=None)]

Variables = Annotated[dict[str, str | None], Body(
    description="KEY: VALUE sets a variable, KEY: null unsets it; the others are left as they are",
    examples=[{"LOG_LEVEL": "info", "OLD_FLAG": None}])]


class VariableIn(BaseModel):
    value: str


class SecretIn(BaseModel):
    value: str = Field(description="the secret's value; it is sealed at once and never shown again")


class SecretOut(BaseModel):
    name: str
    environment: str
    version: int = Field(description="the newest version; each change of the value is a new version")
    versions: int = Field(description="how many versions are kept (sealed), the newest included")
    key_id: str = Field(description="the key the newest version is sealed with")
    created_at: datetime | None
    updated_at: datetime | None


class KeyRotationOut(BaseModel):
    key_id: str
    previous_key_id: str
    secrets: int = Field(description="secret versions sealed again under the new key")


def secret_out(s: SecretVersion) -> SecretOut:
    return SecretOut(name=s.name, environment=s.environment, version=s.version, versions=s.versions,
                     key_id=s.key_id, created_at=s.created_at, updated_at=s.updated_at)


def _app(p: bootstrap.Platform, name: str) -> str:
    return p.apps.get(name).name


def _variables_changed(p: bootstrap.Platform, who: Principal, source: str, app: str, environment: str,
                       changes: dict[str, str | None]) -> None:
    """The change told to the audit log: the variables' names, never their values."""
    for kind, keys in (("variable.set", [k for k, v in changes.items() if v is not None]),
                       ("variable.unset", [k for k, v in changes.items() if v is None])):
        if keys:
            p.events.publish(Event(kind, who.name, source, app, environment, {"names": sorted(keys)}))


# -- variables ------------------------------------------------------------------------------------
@router.get("/variables", tags=["variables"])
def list_variables(name: str, environment: str, p: PlatformDep, _: Reader) -> dict[str, str]:
    """The environment's variables with their values (variables are not secret: use secrets for
    what must be). Every service of the app gets them at its next deploy."""
    return p.configuration.variables(_app(p, name), environment)


@router.patch("/variables", tags=["variables"])
def change_variables(name: str, environment: str, body: Variables, p: PlatformDep,
                     who: Configurer, source: Origin) -> dict[str, str]:
    """Set and unset variables at once; applied at the next deploy. Answers the variables after
    the change."""
    after = p.configuration.change_variables(_app(p, name), environment, body)
    _variables_changed(p, who, source, name, environment, body)
    return after


@router.put("/variables/{key}", tags=["variables"])
def set_variable(name: str, environment: str, key: str, body: VariableIn, p: PlatformDep,
                 who: Configurer, source: Origin) -> dict[str, str]:
    """Set one variable; applied at the next deploy."""
    after = p.configuration.change_variables(_app(p, name), environment, {key: body.value})
    _variables_changed(p, who, source, name, environment, {key: body.value})
    return after


@router.delete("/variables/{key}", status_code=204, tags=["variables"])
def unset_variable(name: str, environment: str, key: str, p: PlatformDep, who: Configurer, source: Origin) -> None:
    """Unset one variable (nothing happens if it is not set); applied at the next deploy."""
    p.configuration.change_variables(_app(p, name), environment, {key: None})
    _variables_changed(p, who, source, name, environment, {key: None})


# -- secrets --------------------------------------------------------------------------------------
@router.get("/secrets", tags=["secrets"])
def list_secrets(name: str, environment: str, p: PlatformDep, _: Reader) -> list[SecretOut]:
    """The environment's secrets: names, versions, dates and keys, never values."""
    return [secret_out(s) for s in p.configuration.secrets(_app(p, name), environment)]


@router.put("/secrets/{secret}", tags=["secrets"])
def set_secret(name: str, environment: str, secret: str, body: SecretIn, p: PlatformDep,
               who: Configurer, source: Origin) -> SecretOut:
    """A new version of the secret, from the value in the body, sealed with AES-256-GCM; applied
    at the next deploy (as the environment variable NAME and the file /run/secrets/NAME)."""
    version = p.configuration.set_secret(_app(p, name), environment, secret, body.value)
    p.events.publish(Event("secret.set", who.name, source, name, environment,
                           {"name": version.name, "version": version.version}))
    return secret_out(version)


@router.delete("/secrets/{secret}", status_code=204, tags=["secrets"])
def remove_secret(name: str, environment: str, secret: str, p: PlatformDep, who: Configurer, source: Origin) -> None:
    """Remove the secret and every version of it; services lose it at the next deploy."""
    p.configuration.remove_secret(_app(p, name), environment, secret)
    p.events.publish(Event("secret.removed", who.name, source, name, environment, {"name": secret}))


@key_router.post("/rotate", summary="Rotate the secrets key")
def rotate_key(p: PlatformDep, who: KeyManager, source: Origin) -> KeyRotationOut:
    """Seal every secret again under a new key, in one transaction; the key file is replaced once
    the database committed (admin only)."""
    rotated = KeyRotationOut.model_validate(p.configuration.rotate_key())
    p.events.publish(Event("secrets_key.rotated", who.name, source, detail=rotated.model_dump()))
    return rotated


@key_router.get("", summary="The secrets key's id")
def key(p: PlatformDep, _: KeyManager) -> dict[str, str]:
    """The id of the key secrets are sealed with now (never the key)."""
    return {"key_id": p.configuration.key_id()}
