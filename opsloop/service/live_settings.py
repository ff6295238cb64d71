"""Settings an owner edits in the browser, in force without a restart.

An installation starts from `Settings` (environment, `OPSLOOP_*_FILE`, opsloop.toml, start-up
options). A few groups can also be saved on the Settings page and kept in the database: the
mail server, the chat channels, the language model, the public address and time zone
(`EDITABLE`). A saved value applies only where nothing at start-up set that setting: the
environment and opsloop.toml always win, and the page says which value comes from where.

Every process re-reads the saved values at most once a second (`LiveSettings.current`), so a
change made in the browser reaches the workers too; the process that saved it sees it at once.
Secrets (passwords, API keys, chat webhook URLs, whose path is their credential) are sealed
with the installation's key before they are stored (opsloop/store/secret_box.py).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr, ValidationError

from opsloop.core.editable_settings import BY_KEY, Editable
from opsloop.core.errors import FieldError, InvalidInput
from opsloop.settings import ENV_PREFIX, Settings
from opsloop.store import settings_values as store
from opsloop.store.database import Database
from opsloop.store.secret_box import SecretBox, SecretUnreadable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the value in force comes from."""

    source: Literal["environment", "start-up", "saved", "default"]
    variable: str | None = None
    """The environment variable that sets it (source `environment`)."""

    @property
    def locked(self) -> bool:
        """Set outside the browser, so a value saved here would not apply."""
        return self.source in ("environment", "start-up")


class LiveSettings:
    """The settings in force: those of start-up, with the saved values where start-up left
    the default. Re-read from the database at most once per `ttl` seconds."""

    def __init__(self, base: Settings, db: Database, box: SecretBox, ttl: float = 1.0) -> None:
        self.base = base
        self.db = db
        self.box = box
        self.ttl = ttl
        self._lock = threading.Lock()
        self._checked = -ttl
        self._rows: dict[str, str] | None = None
        self._current = base
        self._saved: dict[str, Any] = {}
        self._unreadable: set[str] = set()

    def current(self) -> Settings:
        if time.monotonic() - self._checked < self.ttl:
            return self._current
        with self._lock:
            if time.monotonic() - self._checked >= self.ttl:
                self._refresh()
            return self._current

    def saved(self) -> dict[str, Any]:
        """The saved values, opened, by key."""
        self.current()
        return dict(self._saved)

    def unreadable(self) -> set[str]:
        """Saved secrets the installation's key cannot open (the key changed)."""
        self.current()
        return set(self._unreadable)

    def invalidate(self) -> None:
        with self._lock:
            self._checked = -self.ttl

    def origin(self, key: str) -> Origin:
        editable = BY_KEY[key]
        variable = _variable_set(editable)
        if variable is not None:
            return Origin("environment", variable)
        if _set_at_start(self.base, key):
            return Origin("start-up")
        if key in self.saved():
            return Origin("saved")
        return Origin("default")

    def candidate(self, saved: dict[str, Any]) -> Settings:
        """The settings these saved values would give; InvalidInput names each bad field."""
        try:
            return merge(self.base, saved)
        except ValidationError as exc:
            raise InvalidInput(_field_errors(exc)) from None

    def _refresh(self) -> None:
        try:
            with self.db.read() as conn:
                rows = store.all_values(conn)
        except Exception:  # the table is missing before the first migration
            log.debug("saved settings not readable yet", exc_info=True)
            rows = {}
        self._checked = time.monotonic()
        if rows == self._rows:
            return
        saved, unreadable = self._open(rows)
        try:
            self._current = merge(self.base, saved)
        except ValidationError:
            log.warning("saved settings are not valid with these start-up settings; ignored")
            self._current = self.base
        self._rows, self._saved, self._unreadable = rows, saved, unreadable

    def _open(self, rows: dict[str, str]) -> tuple[dict[str, Any], set[str]]:
        saved: dict[str, Any] = {}
        unreadable: set[str] = set()
        for key, stored in rows.items():
            editable = BY_KEY.get(key)
            if editable is None:
                continue  # saved by a newer version, or no longer editable
            try:
                text = self.box.open(stored) if editable.secret else stored
            except SecretUnreadable as exc:
                log.warning("the saved %s: %s", key, exc)
                unreadable.add(key)
                continue
            saved[key] = json.loads(text)
        return saved, unreadable

    def encode(self, key: str, value: Any) -> str:
        text = json.dumps(value)
        return self.box.seal(text) if BY_KEY[key].secret else text


def merge(base: Settings, saved: dict[str, Any]) -> Settings:
    """`base` with each saved value that start-up left at its default."""
    applied = {key: value for key, value in saved.items() if not _set_at_start(base, key)}
    if not applied:
        return base
    data = base.model_dump()
    for key, value in applied.items():
        group, _, inner = key.partition(".")
        if inner:
            data[group][inner] = value
        else:
            data[key] = value
    # model_validate, not the constructor: a constructor would read the environment again.
    return Settings.model_validate(data)


def shown(settings: Settings, key: str) -> Any:
    """The value in force, for the page: a secret only says whether it is set."""
    group, _, inner = key.partition(".")
    value = getattr(getattr(settings, group), inner) if inner else getattr(settings, key)
    if BY_KEY[key].kind == "channels":
        return sorted(value)  # the names; their URLs hold their credential
    if BY_KEY[key].secret:
        return bool(value)
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return value


def _set_at_start(base: Settings, key: str) -> bool:
    group, _, inner = key.partition(".")
    if group not in base.model_fields_set:
        return False
    return not inner or inner in getattr(base, group).model_fields_set


def _variable_set(editable: Editable) -> str | None:
    names = {name.upper() for name in os.environ}
    group = editable.key.partition(".")[0]
    for candidate in (
        editable.variable,
        editable.variable + "_FILE",
        ENV_PREFIX + group.upper(),
    ):
        if candidate in names:
            return candidate
    return None


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc[:2]) if loc and loc[0] == "llm" else (loc[0] if loc else "")
        field = BY_KEY[key].field if key in BY_KEY else key
        errors.append(FieldError(field, error["msg"].removeprefix("Value error, ")))
    return errors
