"""The settings an owner edits on the Settings page: what is in force, where it comes from, and
saving a group (the mail server, chat channels, the language model, general). See
opsloop/service/live_settings.py for how saved values reach every process."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from opsloop.core.editable_settings import BY_KEY, EDITABLE, GROUPS, Editable
from opsloop.core.errors import FieldError, InvalidInput
from opsloop.service.context import Context
from opsloop.service.live_settings import Origin, shown
from opsloop.store import audit
from opsloop.store import settings_values as store

CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,49}$")


@dataclass(frozen=True, slots=True)
class SettingView:
    editable: Editable
    in_force: Any
    """The value in force; for a secret, whether one is set."""
    origin: Origin
    saved: Any
    """What the form shows: the saved value (a secret: whether one is saved; never its text)."""
    unreadable: bool
    """A secret was saved but this installation's key cannot open it."""


class Configuration:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def view(self) -> list[SettingView]:
        live = self.ctx.live
        settings = live.current()
        saved = live.saved()
        unreadable = live.unreadable()
        views = []
        for editable in EDITABLE:
            value = saved.get(editable.key)
            form_value: Any
            if editable.secret:
                form_value = editable.key in saved
            elif editable.kind == "channels":
                form_value = value
            else:
                form_value = "" if value is None else value
            views.append(
                SettingView(
                    editable=editable,
                    in_force=shown(settings, editable.key),
                    origin=live.origin(editable.key),
                    saved=form_value,
                    unreadable=editable.key in unreadable,
                )
            )
        return views

    def key_location(self) -> str:
        """Where the key sealing saved secrets comes from."""
        return self.ctx.live.box.where

    def save(
        self, group: str, form: dict[str, str], *, clear: set[str] | None = None, actor: str
    ) -> list[str]:
        """Save one group's form. An empty field removes the saved value (the default applies
        again), except a secret's, which keeps it unless its field is in `clear`. Fields that
        start-up settings fix are ignored. Returns the keys that changed; InvalidInput names
        each bad field and changes nothing."""
        if group not in GROUPS:
            raise InvalidInput.single("group", f"{group!r} is not one of {', '.join(GROUPS)}")
        clear = clear or set()
        live = self.ctx.live
        saved = live.saved()
        wanted = dict(saved)
        errors: list[FieldError] = []
        for editable in EDITABLE:
            if editable.group != group or live.origin(editable.key).locked:
                continue
            text = form.get(editable.field, "").strip()
            if editable.secret and not text:
                if editable.field in clear:
                    wanted.pop(editable.key, None)
                continue
            if not text:
                wanted.pop(editable.key, None)
                continue
            try:
                wanted[editable.key] = _parse(editable, text)
            except ValueError as exc:
                errors.append(FieldError(editable.field, str(exc)))
        if errors:
            raise InvalidInput(errors)
        candidate = live.candidate(wanted)
        typed = {key: _plain(_value_of(candidate, key)) for key in wanted}
        for key in set(typed) - set(saved):
            # A select always posts a value: the default, unchanged, is not worth saving.
            if typed[key] == _plain(_value_of(live.base, key)):
                del typed[key]
        order = [editable.key for editable in EDITABLE]
        changed = [key for key in order if saved.get(key) != typed.get(key)]
        if not changed:
            return []
        now = self.ctx.clock()
        with self.ctx.db.transaction() as tx:
            for key in changed:
                if key in typed:
                    store.put(tx.conn, key, live.encode(key, typed[key]), at=now, actor=actor)
                else:
                    store.remove(tx.conn, key)
            audit.record(
                tx.conn,
                now,
                actor,
                "settings.saved",
                group,
                {"keys": changed},
                object_type="settings",
            )
        live.invalidate()
        return changed


def _parse(editable: Editable, text: str) -> Any:
    if editable.kind == "channels":
        return _channels(text)
    if editable.kind == "choice" and text not in editable.choices:
        raise ValueError(f"choose one of {', '.join(editable.choices)}")
    return text  # typed and checked by the Settings model, with its own messages


def _channels(text: str) -> dict[str, str]:
    channels: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, url = (part.strip() for part in line.partition("="))
        if not sep or not url:
            raise ValueError(f"line {number}: write `name = https://hooks.example.com/...`")
        name = name.lower()
        if not CHANNEL_NAME.match(name):
            raise ValueError(
                f"line {number}: {name!r} is not a channel name (letters, digits, - and _)"
            )
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"line {number}: {url[:40]!r} is not an http:// or https:// URL")
        if name in channels:
            raise ValueError(f"line {number}: the channel {name!r} is named twice")
        channels[name] = url
    return channels


def _value_of(settings: Any, key: str) -> Any:
    group, _, inner = key.partition(".")
    return getattr(getattr(settings, group), inner) if inner else getattr(settings, key)


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


__all__ = ["BY_KEY", "Configuration", "SettingView"]
