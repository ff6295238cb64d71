"""Secrets at rest: sources' signing secrets and the passwords and keys saved in Settings are
stored sealed (Fernet: AES-128-CBC with an HMAC-SHA256, from `cryptography`), so a copy of the
database alone gives none of them away.

The key comes from `OPSLOOP_ENCRYPTION_KEY` when set (every process and machine of one
installation must then share it), else from `<data_dir>/secret.key`, made on first use and
readable by its owner only. Lose the key and the sealed secrets are lost with it: they must be
entered again.

A sealed value is written `fernet:<token>`. Values stored before secrets were sealed are read
as they are and sealed when next written (`OpsLoop` seals them at start-up).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from opsloop.core.errors import Conflict

SEALED = "fernet:"
KEY_FILE = "secret.key"


class SecretUnreadable(Conflict):
    """A sealed secret cannot be opened with this process's key (a conflict with how the
    database was set up: the CLI and the web answer it with its message)."""


class SecretBox:
    def __init__(
        self, *, key: str | None, data_dir: Path, sealed_before: Callable[[], bool] | None = None
    ) -> None:
        """`sealed_before`: whether the database already holds sealed secrets, asked before a
        new key file is made (a new key could not open them)."""
        self._given = key
        self._path = data_dir / KEY_FILE
        self._sealed_before = sealed_before
        self._lock = threading.Lock()
        self._fernet: Fernet | None = None

    @property
    def where(self) -> str:
        """Where the key comes from, for messages."""
        return "OPSLOOP_ENCRYPTION_KEY" if self._given else str(self._path)

    def seal(self, secret: str) -> str:
        return SEALED + self._key().encrypt(secret.encode()).decode()

    def open(self, stored: str) -> str:
        """The secret in a stored value; a value stored before sealing is returned as it is."""
        if not stored.startswith(SEALED):
            return stored
        try:
            return self._key().decrypt(stored.removeprefix(SEALED).encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                f"a stored secret cannot be read with the encryption key from {self.where}: "
                "the key changed since it was saved; enter the secret again"
            ) from None

    @staticmethod
    def is_sealed(stored: str) -> bool:
        return stored.startswith(SEALED)

    def _key(self) -> Fernet:
        with self._lock:
            if self._fernet is None:
                self._fernet = Fernet(self._given_key() if self._given else self._file_key())
            return self._fernet

    def _given_key(self) -> bytes:
        # Any text will do: a Fernet key as `Fernet.generate_key()` writes it is used as is,
        # anything else is hashed to one, so `openssl rand -base64 32` works too.
        given = (self._given or "").strip()
        try:
            if len(base64.urlsafe_b64decode(given.encode())) == 32:
                return given.encode()
        except ValueError:
            pass
        return base64.urlsafe_b64encode(hashlib.sha256(given.encode()).digest())

    def _file_key(self) -> bytes:
        if self._path.exists():
            return self._path.read_bytes().strip()
        if self._sealed_before is not None and self._sealed_before():
            # Most likely this process runs with another data folder than the one that sealed
            # them (a command run from another directory, a second machine).
            raise SecretUnreadable(
                f"the database holds secrets sealed with a key this process does not have: no "
                f"{self._path}. Run it with the data folder the server uses (OPSLOOP_DATA_DIR) "
                "or set OPSLOOP_ENCRYPTION_KEY"
            )
        self._path.parent.mkdir(parents=True, exist_ok=True)
        key = Fernet.generate_key()
        # Created readable by the owner only, and never replaced: O_EXCL makes a second process
        # racing to create it read the first one's key instead.
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self._path.read_bytes().strip()
        with os.fdopen(fd, "wb") as file:
            file.write(key + b"\n")
        return key
