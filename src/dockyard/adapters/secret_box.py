"""Secrets at rest: AES-256-GCM (the ``cryptography`` library) under a key kept in a file of its
own, outside the database (SecretCipher and SecretKeys).

Each encryption takes a fresh random 96-bit nonce, stored before the ciphertext; the associated
data binds a ciphertext to its row (domain/configuration.py). The key file holds 32 random
bytes, base64, mode 0600. The ``cryptography`` library is loaded at the first seal or open
(~10 MB the server keeps only once secrets are used). A rotation writes the new key to ``FILE.new`` first; it replaces the
key file only after the store committed the re-sealed secrets (``promote``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.domain.configuration import SecretUnreadable
from dockyard.domain.errors import Unavailable

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, as GCM wants


def key_id(key: bytes) -> str:
    """Names a key without revealing it: which key sealed a secret is checkable."""
    return hashlib.sha256(b"dockyard-secrets-key-id\0" + key).hexdigest()[:16]


class AesGcmCipher:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an AES-256 key is {KEY_BYTES} bytes, not {len(key)}")
        self._key = key
        self._aead: AESGCM | None = None
        self._key_id = key_id(key)

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._aead = AESGCM(self._key)
        return self._aead

    def __repr__(self) -> str:
        return f"AesGcmCipher(key_id={self._key_id!r})"

    @property
    def key_id(self) -> str:
        return self._key_id

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._cipher().encrypt(nonce, plaintext, associated)

    def open(self, sealed: bytes, associated: bytes) -> bytes:
        if len(sealed) < NONCE_BYTES + 16:
            raise SecretUnreadable("a sealed secret is too short to be one")
        from cryptography.exceptions import InvalidTag

        try:
            return self._cipher().decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
        except InvalidTag:
            raise SecretUnreadable(
                f"a secret does not decrypt with key {self._key_id}: it was sealed with another key, "
                "or changed, or moved to another row",
                "restore the key file the secret was sealed with (DOCKYARD_SECRETS_KEY_FILE), or set the secret again",
            ) from None


class KeyFile:
    """The secrets key in a 0600 file; created when missing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.staged_path = path.with_name(path.name + ".new")
        self._current = AesGcmCipher(self._load_or_create(path))

    def current(self) -> AesGcmCipher:
        return self._current

    def stage(self) -> AesGcmCipher:
        key = secrets.token_bytes(KEY_BYTES)
        self.staged_path.unlink(missing_ok=True)
        _write_new(self.staged_path, key)
        return AesGcmCipher(key)

    def staged(self) -> AesGcmCipher | None:
        if not self.staged_path.exists():
            return None
        try:
            return AesGcmCipher(_read(self.staged_path))
        except Unavailable:
            return None  # a stage cut off while written: it was never used

    def promote(self) -> AesGcmCipher:
        staged = self.staged()
        if staged is None:
            raise Unavailable(f"no staged key at {self.staged_path}")
        os.replace(self.staged_path, self.path)
        _sync_dir(self.path.parent)
        self._current = staged
        return staged

    def discard(self) -> None:
        self.staged_path.unlink(missing_ok=True)

    @staticmethod
    def _load_or_create(path: Path) -> bytes:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile: read that one
                _write_new(path, secrets.token_bytes(KEY_BYTES))
                log.info("created the secrets key %s", path)
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("the secrets key %s was readable by others (mode %o): now 0600", path, mode)
            path.chmod(0o600)
        return _read(path)


def _read(path: Path) -> bytes:
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (OSError, binascii.Error) as exc:
        raise Unavailable(f"the secrets key {path} cannot be read ({exc})",
                          "restore it from a backup; without it, stored secrets cannot be decrypted") from None
    if len(key) != KEY_BYTES:
        raise Unavailable(f"the secrets key {path} holds {len(key)} bytes, not {KEY_BYTES}",
                          "restore it from a backup; without it, stored secrets cannot be decrypted")
    return key


def _write_new(path: Path, key: bytes) -> None:
    """Created 0600 from the start (never readable by others, even for a moment), then synced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
