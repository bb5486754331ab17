"""An environment's variables and secrets, as rules: their names and sizes, the order in which
they reach a service, the references that stand for a secret in a stored spec, and redaction.
Pure: the values come in as arguments.

Precedence, lowest first: the compose file's ``env_file`` and ``environment`` (as Compose merges
them), then the environment's variables, then its secrets.

Every service receives every secret, unless its compose file has a top-level ``secrets:``: then
each service receives only the secrets it lists (``ServiceSpec.secret_files``), as variables and
as files named by their ``target``; a secret it lists that is not set is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace

from dockyard.domain.errors import DockyardError, InvalidName
from dockyard.domain.model import ServiceSpec
from dockyard.domain.names import is_app_name

SECRETS_DIR = "/run/secrets"  # each secret a service receives is a file there (SECRETS_DIR/NAME by default)
MAX_KEY_CHARS = 128
MAX_VARIABLE_BYTES = 32 * 1024
MAX_VARIABLES = 500
MAX_SECRET_BYTES = 64 * 1024
MIN_REDACTED_CHARS = 4  # shorter values would blank out ordinary words



class SecretUnreadable(DockyardError):
    """A ciphertext that does not open: another key, or it was changed or moved."""

    status = 500


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77] + "...")


def environment_name(value: str) -> str:
    """An environment is named like an app: it becomes part of labels and volume names."""
    if not is_app_name(value):
        raise InvalidName(
            f"invalid environment name {_shown(value)}",
            "use 1-40 lowercase letters, digits and single dashes, starting with a letter (e.g. 'production')",
        )
    return value


def variable_key(value: str) -> str:
    if len(value) > MAX_KEY_CHARS or not _KEY.fullmatch(value):
        raise InvalidName(
            f"invalid variable name {_shown(value)}",
            f"use letters, digits and '_', not starting with a digit (at most {MAX_KEY_CHARS} characters)",
        )
    return value


def secret_name(value: str) -> str:
    """A secret's name is an environment variable's name and a file's, in /run/secrets."""
    if len(value) > MAX_KEY_CHARS or not _KEY.fullmatch(value):
        raise InvalidName(
            f"invalid secret name {_shown(value)}",
            f"use letters, digits and '_', not starting with a digit (at most {MAX_KEY_CHARS} characters)",
        )
    return value


def variable_value(key: str, value: str) -> str:
    if "\0" in value:
        raise DockyardError(f"variable {key}: a value may not hold a NUL character")
    if len(value.encode()) > MAX_VARIABLE_BYTES:
        raise DockyardError(f"variable {key}: the value is {len(value.encode())} bytes, over the limit of "
                            f"{MAX_VARIABLE_BYTES}", "keep large configuration in a file of the repository")
    return value


def secret_value(name: str, value: str) -> str:
    """Checked without ever quoting the value."""
    if not value:
        raise DockyardError(f"secret {name}: the value is empty", "give the value on stdin or with --from-file")
    if "\0" in value:
        raise DockyardError(f"secret {name}: a value may not hold a NUL character (it becomes an environment "
                            "variable)")
    size = len(value.encode())
    if size > MAX_SECRET_BYTES:
        raise DockyardError(f"secret {name}: the value is {size} bytes, over the limit of {MAX_SECRET_BYTES}")
    return value


def reference(name: str, version: int) -> str:
    """What a stored spec holds in place of a secret's value."""
    return f"<secret:{name}@v{version}>"


def associated_data(app: str, environment: str, name: str, version: int) -> bytes:
    """Binds a ciphertext to its row: moved to another app, environment, name or version, it
    does not decrypt. The parts are validated names: none holds a NUL."""
    return b"\0".join([b"dockyard-secret-v1", app.encode(), environment.encode(), name.encode(),
                       str(version).encode()])


def versions_digest(secrets: Sequence[tuple[str, int]]) -> str:
    """Names a set of secret versions (e.g. the volume that holds their files)."""
    text = "\n".join(f"{name}@{version}" for name, version in sorted(secrets))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


Mount = Callable[[Sequence[tuple[str, int]]], str]  # volume keys -> the bind of their files


def listed(service: ServiceSpec) -> set[str] | None:
    """The secrets a service lists in its compose file's ``secrets:`` (None: no top-level
    ``secrets:``, so it receives every secret of its environment)."""
    if service.secret_files is None:
        return None
    return {entry.partition(":")[0] for entry in service.secret_files}


def secret_files(service: ServiceSpec) -> list[tuple[str, str]]:
    """(file name in SECRETS_DIR, secret name) of each file the service gets: each secret it
    receives under its own name, or where its compose file puts it (``target``)."""
    if service.secret_files is None:
        return [(name, name) for name, _ in service.secrets]
    return [(file, name) for name, _, file in (entry.partition(":") for entry in service.secret_files)]


def volume_keys(service: ServiceSpec) -> list[tuple[str, int]]:
    """What names the volume of a service's secret files (``SecretFiles.mount``): the versions
    it holds, and each file named otherwise than its secret (``NAME:FILE``). Files named as their
    secrets (always without a top-level ``secrets:``) give the service's ``secrets``: the same
    volume, the same bind as before compose secrets were honoured."""
    versions = dict(service.secrets)
    return sorted({(name if file == name else f"{name}:{file}", versions[name]) for file, name in secret_files(service)})


def unset_secrets(services: Sequence[ServiceSpec], set_names: Collection[str]) -> dict[str, list[str]]:
    """The secrets services list (compose ``secrets:``) that are not set: name -> the services."""
    missing: dict[str, list[str]] = {}
    for service in services:
        for name in sorted((listed(service) or set()) - set(set_names)):
            missing.setdefault(name, []).append(service.name)
    return dict(sorted(missing.items()))


def configure(service: ServiceSpec, variables: Mapping[str, str], secrets: Sequence[tuple[str, int]],
              mount: str | Mount = "") -> ServiceSpec:
    """The service with the environment's variables and secrets, over what its compose file
    gives: compose < variables < secrets. A service of a compose file with a top-level
    ``secrets:`` receives only those it lists. Secrets enter as references and as ``mount``, the
    bind that puts their files at /run/secrets (or a function of ``volume_keys`` that gives it)."""
    wanted = listed(service)
    if wanted is not None:
        missing = sorted(wanted - {name for name, _ in secrets})
        if missing:
            raise DockyardError(f"service {service.name}: the secret {missing[0]} is not set",
                                f"set it (its value from stdin): dockyard secrets set APP {missing[0]} --env ENV")
        secrets = [(name, version) for name, version in secrets if name in wanted]
    env = dict(service.environment)
    env.update(variables)
    env.update({name: reference(name, version) for name, version in secrets})
    configured = replace(service, environment=tuple(env.items()), secrets=tuple(sorted(secrets)))
    if callable(mount):
        mount = mount(volume_keys(configured)) if secrets else ""
    binds = (*service.binds, mount) if secrets and mount else service.binds
    return replace(configured, binds=binds)


def resolve(service: ServiceSpec, values: Mapping[str, str]) -> ServiceSpec:
    """The service as its container starts: each secret's reference replaced by its value. Its
    spec_hash is the same as the stored spec's."""
    names = {name for name, _ in service.secrets}
    missing = names - set(values)
    if missing:
        raise DockyardError(f"service {service.name}: no value for secret {sorted(missing)[0]}")
    env = tuple((k, values[k] if k in names else v) for k, v in service.environment)
    return replace(service, environment=env)


def release_config(variables: Mapping[str, str], secrets: Sequence[tuple[str, int]]) -> dict[str, object]:
    """What a release records of its configuration: variable names and secret versions, never values."""
    return {"variables": sorted(variables), "secrets": dict(sorted(secrets))}


def redaction(values: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(text, replacement) pairs for ``values`` (secret name → the values it had), longest first,
    so a value that holds another is replaced whole. A value of several lines is also replaced
    line by line: a log line holds at most one of them."""
    pairs: dict[str, str] = {}
    for name, texts in sorted(values.items()):
        for text in texts:
            parts = [text, *(line.strip() for line in text.splitlines())] if "\n" in text else [text]
            for part in parts:
                if len(part) >= MIN_REDACTED_CHARS:
                    pairs.setdefault(part, f"<redacted:{name}>")
    return sorted(pairs.items(), key=lambda p: (-len(p[0]), p[0]))


def redact(line: str, pairs: Sequence[tuple[str, str]]) -> str:
    for text, replacement in pairs:
        if text in line:
            line = line.replace(text, replacement)
    return line


def redactor(pairs: Sequence[tuple[str, str]]) -> Callable[[str], str]:
    return lambda line: redact(line, pairs)
