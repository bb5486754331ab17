"""Variables and secrets of each (app, environment): set, list, remove; sealed at rest; handed to
services at deploy (as references, with their versions) and resolved as containers start; the
secrets key rotated; job logs cleaned of secret values."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dockyard.domain import configuration as cfg
from dockyard.domain.errors import DockyardError, InvalidSource
from dockyard.domain.model import SealedSecret, SecretVersion, ServiceSpec
from dockyard.ports import ConfigStore, SecretCipher, SecretFiles, SecretKeys

log = logging.getLogger(__name__)


@dataclass
class Configuration:
    store: ConfigStore
    keys: SecretKeys
    files: SecretFiles | None = None  # None: no secret files (tests without an engine)
    # others sealed under the key (webhook secrets): told (old, new) as it rotates, before the new
    # key replaces the old one; each keeps what it sealed readable under both until then
    also_reseal: list[Callable[[SecretCipher, SecretCipher], int]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _generation: int = field(default=0, init=False, repr=False)  # bumped by every change of a secret
    _redaction: dict[str, tuple[int, list[tuple[str, str]]]] = field(default_factory=dict, init=False, repr=False)

    # -- variables ------------------------------------------------------------------------
    def variables(self, app: str, environment: str) -> dict[str, str]:
        return self.store.variables(app, cfg.environment_name(environment))

    def change_variables(self, app: str, environment: str, changes: Mapping[str, str | None]) -> dict[str, str]:
        """Set (a value) or unset (None) variables, all at once."""
        environment = cfg.environment_name(environment)
        checked: dict[str, str | None] = {}
        for key, value in changes.items():
            cfg.variable_key(key)
            checked[key] = None if value is None else cfg.variable_value(key, value)
        if not checked:
            raise DockyardError("no variables given", "give KEY=VALUE pairs (or KEY to unset)")
        after = self.store.variables(app, environment) | {k: v for k, v in checked.items() if v is not None}
        if len(after) > cfg.MAX_VARIABLES:
            raise DockyardError(f"{app} ({environment}) would have {len(after)} variables, over the limit of "
                                f"{cfg.MAX_VARIABLES}")
        return self.store.set_variables(app, environment, checked)

    # -- secrets --------------------------------------------------------------------------
    def secrets(self, app: str, environment: str) -> list[SecretVersion]:
        return self.store.secrets(app, cfg.environment_name(environment))

    def set_secret(self, app: str, environment: str, name: str, value: str) -> SecretVersion:
        """A new version of the secret, sealed under the current key."""
        environment, name = cfg.environment_name(environment), cfg.secret_name(name)
        plaintext = cfg.secret_value(name, value).encode()
        with self._lock:
            cipher = self.keys.current()

            def seal(version: int) -> tuple[str, bytes]:
                return cipher.key_id, cipher.seal(plaintext, cfg.associated_data(app, environment, name, version))

            added = self.store.add_secret(app, environment, name, seal)
            self._generation += 1
        return added

    def remove_secret(self, app: str, environment: str, name: str) -> None:
        environment, name = cfg.environment_name(environment), cfg.secret_name(name)
        with self._lock:
            self.store.remove_secret(app, environment, name)
            self._generation += 1

    def _open(self, sealed: SealedSecret) -> str:
        with self._lock:
            cipher = self._cipher(sealed.key_id)
            plaintext = cipher.open(sealed.ciphertext, cfg.associated_data(
                sealed.app, sealed.environment, sealed.name, sealed.version))
        return plaintext.decode()

    def _cipher(self, key_id: str) -> SecretCipher:
        current = self.keys.current()
        if key_id == current.key_id:
            return current
        raise cfg.SecretUnreadable(
            f"a secret was sealed with key {key_id}, and the key file holds key {current.key_id}",
            "restore the key file that secret was sealed with (DOCKYARD_SECRETS_KEY_FILE), or set the secret again")

    # -- the key --------------------------------------------------------------------------
    def key_id(self) -> str:
        return self.keys.current().key_id

    def rotate_key(self) -> dict[str, object]:
        """Every secret sealed again under a new key, in one transaction; the new key replaces
        the key file only after the commit (a crash between the two is finished at the next
        start: ``recover``)."""
        with self._lock:
            old = self.keys.current()
            new = self.keys.stage()
            try:
                def reseal(sealed: SealedSecret) -> tuple[str, bytes]:
                    data = cfg.associated_data(sealed.app, sealed.environment, sealed.name, sealed.version)
                    return new.key_id, new.seal(self._cipher(sealed.key_id).open(sealed.ciphertext, data), data)

                for other in self.also_reseal:
                    other(old, new)
                count = self.store.reseal_secrets(reseal)
            except BaseException:
                self.keys.discard()
                raise
            self.keys.promote()
        log.info("secrets key rotated: %s -> %s (%d secret versions sealed again)", old.key_id, new.key_id, count)
        return {"key_id": new.key_id, "previous_key_id": old.key_id, "secrets": count}

    def recover(self) -> None:
        """At start: finish a rotation cut off after its commit, or drop one cut off before it."""
        with self._lock:
            staged = self.keys.staged()
            if staged is None:
                return
            sealed_with = {s.key_id for s in self.store.sealed_secrets()}
            if staged.key_id in sealed_with:
                self.keys.promote()
                log.warning("finished a rotation of the secrets key cut off after its commit: key %s", staged.key_id)
            else:
                self.keys.discard()
                log.warning("dropped a rotation of the secrets key cut off before its commit")
            unreadable = sealed_with - {self.keys.current().key_id}
            if unreadable:
                log.error("secrets sealed with key(s) %s cannot be decrypted with the key file's key %s: restore "
                          "that key file", ", ".join(sorted(unreadable)), self.keys.current().key_id)

    def check(self) -> list[str]:
        """Key ids of stored secrets that the current key cannot open (a wrong key file)."""
        current = self.keys.current().key_id
        return sorted({s.key_id for s in self.store.sealed_secrets()} - {current})

    # -- deploy ---------------------------------------------------------------------------
    def apply(self, app: str, environment: str, services: Sequence[ServiceSpec],
              declared: Mapping[str, str] | None = None) -> tuple[tuple[ServiceSpec, ...], dict[str, object]]:
        """Every service with the environment's variables (``declared`` by dockyard.yml, under
        those set by the CLI) and secrets (references and versions, never values), and what the
        release records of them."""
        variables = {**(declared or {}), **self.store.variables(app, environment)}
        secrets = [(s.name, s.version) for s in self.store.secrets(app, environment)]
        unset = cfg.unset_secrets(services, [name for name, _ in secrets])
        if unset:
            name, users = next(iter(unset.items()))
            more = f" (and {len(unset) - 1} more: {', '.join(list(unset)[1:])})" if len(unset) > 1 else ""
            raise InvalidSource(
                f"the compose file gives the secret {name} to {', '.join(users)}, and {app}'s environment "
                f"{environment} has no secret {name}{more}",
                f"set it (its value from stdin): dockyard secrets set {app} {name} --env {environment}")
        files = self.files

        def mount(keys: Sequence[tuple[str, int]]) -> str:  # a volume per set of files (compose secrets)
            return files.mount(app, environment, keys) if files is not None else ""

        configured = tuple(cfg.configure(s, variables, secrets, mount) for s in services)
        return configured, cfg.release_config(variables, secrets)

    def resolve(self, app: str, environment: str, service: ServiceSpec) -> ServiceSpec:
        """The service as its container starts: secret values in its environment, secret files
        in place."""
        if not service.secrets:
            return service
        values = {name: self._open(self.store.sealed_secret(app, environment, name, version))
                  for name, version in service.secrets}
        if self.files is not None:
            self.files.write(app, environment, cfg.volume_keys(service),
                             {file: values[name].encode() for file, name in cfg.secret_files(service)})
        return cfg.resolve(service, values)

    def prune(self, app: str) -> None:
        """Secret files no container uses any more go."""
        if self.files is None:
            return
        try:
            self.files.prune(app)
        except Exception as exc:  # clean-up: the next deploy tries again
            log.warning("removing unused secret files of %s: %s", app, exc)

    # -- redaction ------------------------------------------------------------------------
    def redactor(self, app: str) -> Callable[[str], str]:
        """Replaces every known value of the app's secrets (all versions, all environments) with
        ``<redacted:NAME>``; follows changes made while it is in use."""

        def clean(line: str) -> str:
            return cfg.redact(line, self._pairs(app))

        return clean

    def _pairs(self, app: str) -> list[tuple[str, str]]:
        generation = self._generation
        cached = self._redaction.get(app)
        if cached is not None and cached[0] == generation:
            return cached[1]
        values: dict[str, list[str]] = {}
        for sealed in self.store.sealed_secrets(app):
            try:
                values.setdefault(sealed.name, []).append(self._open(sealed))
            except (DockyardError, UnicodeDecodeError) as exc:
                log.warning("secret %s of %s cannot be redacted from logs: %s", sealed.name, app, exc)
        pairs = cfg.redaction(values)
        self._redaction[app] = (generation, pairs)
        return pairs
