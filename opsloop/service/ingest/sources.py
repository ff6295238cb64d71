"""Sources as the business declared them: add (or replace) from YAML, list, enable, remove.

A source's secret (signing secret, write key, API token, mailbox password) is stored apart from
its definition and never returned by a listing: `StoredSource.secret` is for the code that
checks or uses it. With `secret_env`, the secret is read from that environment variable each
time, so it can be rotated without touching the database.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opsloop.core.errors import Conflict, InvalidInput, NotFound
from opsloop.core.sources import RESERVED_NAMES, SourceSpec, parse_source
from opsloop.perception.mapping import Mapping
from opsloop.service.context import Context
from opsloop.store import audit
from opsloop.store import source_registry as store
from opsloop.store.secret_box import SecretUnreadable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredSource:
    id: int
    spec: SourceSpec
    secret: str | None
    """Resolved: from `secret_env` when the spec names one, else the stored secret."""
    enabled: bool
    created_at: datetime
    updated_at: datetime
    updated_by: str
    checkpoint: dict[str, Any] | None
    checkpoint_at: datetime | None
    next_sync_at: datetime | None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def has_secret(self) -> bool:
        return bool(self.secret)

    def public(self) -> dict[str, Any]:
        """What listings show: everything but the secret, which is only said to exist."""
        return {
            "name": self.name,
            "kind": self.spec.kind,
            "enabled": self.enabled,
            "spec": self.spec.written(),
            "has_secret": self.has_secret,
            "secret_env": self.spec.secret_env,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "checkpoint": self.checkpoint,
            "checkpoint_at": self.checkpoint_at,
            "next_sync_at": self.next_sync_at,
        }


@dataclass(frozen=True, slots=True)
class Added:
    name: str
    created: bool
    """False: an existing source was replaced."""


def add_text(
    ctx: Context,
    text: str,
    file: str,
    *,
    secret: str | None = None,
    actor: str,
    replace: bool = False,
    name: str | None = None,
) -> Added:
    """Add a source from its YAML. A `secret` given here wins over one in the file; with
    `name`, the file must declare that name (an API call addressed to it)."""
    spec, in_file = parse_source(text, file)
    if name is not None and spec.name != name:
        raise InvalidInput.single(
            "name", f"is {spec.name!r} in the YAML; the address says {name!r}"
        )
    return add(ctx, spec, secret=secret or in_file, actor=actor, replace=replace)


def add(
    ctx: Context,
    spec: SourceSpec,
    *,
    secret: str | None,
    actor: str,
    replace: bool = False,
) -> Added:
    """Store a source. Replacing keeps its checkpoint and, when no new secret is given, its
    secret. Raises Conflict when it exists and `replace` is False."""
    _check_ready(spec, secret)
    now = ctx.clock()
    next_sync = now if spec.pulled and spec.enabled else None
    with ctx.db.transaction() as tx:
        current = store.get(tx.conn, spec.name)
        values: dict[str, Any] = {
            "kind": spec.kind,
            "spec": spec.model_dump(mode="json"),
            "enabled": spec.enabled,
            "updated_at": now,
            "updated_by": actor,
        }
        if current is None:
            if spec.needs_secret and not secret and not spec.secret_env:
                raise InvalidInput.single("secret", _secret_hint(spec))
            store.insert_source(
                tx.conn,
                name=spec.name,
                kind=spec.kind,
                spec=values["spec"],
                secret=ctx.secrets.seal(secret) if secret else None,
                enabled=spec.enabled,
                at=now,
                actor=actor,
                next_sync_at=next_sync,
            )
        elif not replace:
            raise Conflict(
                f"source {spec.name!r} exists; use --replace to change it "
                "(its checkpoint and, unless you give a new one, its secret are kept)"
            )
        else:
            if secret is not None:
                values["secret"] = ctx.secrets.seal(secret) if secret else None
            elif spec.needs_secret and not current["secret"] and not spec.secret_env:
                raise InvalidInput.single("secret", _secret_hint(spec))
            if spec.pulled and spec.enabled and current["next_sync_at"] is None:
                values["next_sync_at"] = now
            if not spec.pulled or not spec.enabled:
                values["next_sync_at"] = None
            store.update_source(tx.conn, spec.name, **values)
        audit.record(
            tx.conn,
            now,
            actor,
            "source.added" if current is None else "source.replaced",
            spec.name,
            {"kind": spec.kind, "secret_changed": secret is not None},
        )
    ctx.late_after.invalidate()  # its `late_after` may have changed
    return Added(spec.name, created=current is None)


def get(ctx: Context, name: str) -> StoredSource:
    found = find(ctx, name)
    if found is None:
        raise NotFound(f"no source {name!r}; `opsloop source list` shows them")
    return found


def find(ctx: Context, name: str) -> StoredSource | None:
    with ctx.db.read() as conn:
        row = store.get(conn, name)
    return _stored(ctx, row) if row else None


def list_sources(ctx: Context, *, kind: str | None = None) -> list[StoredSource]:
    with ctx.db.read() as conn:
        rows = store.list_all(conn, kind=kind)
    return [_stored(ctx, row) for row in rows]


def by_write_key(ctx: Context, write_key: str) -> StoredSource | None:
    """The enabled tracking source whose write key this is."""
    if not write_key:
        return None
    for source in list_sources(ctx, kind="segment"):
        # compare_digest: the time taken does not tell how much of a key was right.
        if (
            source.enabled
            and source.secret
            and hmac.compare_digest(source.secret.encode(), write_key.encode())
        ):
            return source
    return None


def public_sources(ctx: Context, conn: Connection, names: set[str]) -> set[str]:
    """The sources among `names` whose credential is public (`SourceSpec.public`): a segment
    source, a webhook with `allow_unsigned` (declared, or configured in settings). Read in the
    caller's transaction, so a source changed a moment ago is judged as it is now. `api` and
    `import` (tokens, operators) and sources nobody declares (pulled history, old names) are
    trusted."""
    public = set()
    for name in names - RESERVED_NAMES:
        row = store.get(conn, name)
        config = ctx.settings.sources.get(name)
        # Either way in makes it public: a name both declared and in settings reaches /hooks
        # through the settings when the declared source is not a webhook.
        if (row is not None and SourceSpec.model_validate(row["spec"]).public) or (
            config is not None and config.secret is None and config.allow_unsigned
        ):
            public.add(name)
    return public


def set_enabled(ctx: Context, name: str, enabled: bool, *, actor: str) -> None:
    source = get(ctx, name)
    now = ctx.clock()
    spec = source.spec.model_copy(update={"enabled": enabled})
    with ctx.db.transaction() as tx:
        store.update_source(
            tx.conn,
            name,
            enabled=enabled,
            spec=spec.model_dump(mode="json"),
            updated_at=now,
            updated_by=actor,
            next_sync_at=now if enabled and spec.pulled else None,
        )
        audit.record(
            tx.conn, now, actor, "source.enabled" if enabled else "source.disabled", name, {}
        )


def remove(ctx: Context, name: str, *, actor: str) -> None:
    """Forget a source's definition; the events it sent stay in the ledger."""
    with ctx.db.transaction() as tx:
        if not store.delete_source(tx.conn, name):
            raise NotFound(f"no source {name!r}")
        audit.record(tx.conn, ctx.clock(), actor, "source.removed", name, {})


def _check_ready(spec: SourceSpec, secret: str | None) -> None:
    if spec.mapping is not None:
        # A broken rule is refused now, naming the rule and field, not at the first delivery.
        Mapping.load(spec.mapping, origin="mapping")
    if spec.verify == "standard" and secret and not _standard_secret(secret):
        raise InvalidInput.single(
            "secret",
            "a Standard Webhooks secret is `whsec_` followed by base64, as the sender shows it",
        )
    if spec.secret_env and secret:
        raise InvalidInput.single(
            "secret", "give the secret either in secret_env or directly, not both"
        )
    if spec.secret_env and spec.secret_env not in os.environ:
        raise InvalidInput.single(
            "secret_env", f"the environment variable {spec.secret_env} is not set here"
        )


def _standard_secret(secret: str) -> bool:
    try:
        base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        return False
    return True


def _secret_hint(spec: SourceSpec) -> str:
    return (
        f"this {spec.kind} source needs its {spec.secret_name}: "
        "--secret-file FILE, or secret_env: VARIABLE in the file"
    )


def seal_stored(ctx: Context) -> int:
    """Seal the secrets stored before secrets were sealed at rest; returns how many."""
    with ctx.db.transaction() as tx:
        rows = [row for row in store.list_all(tx.conn) if row["secret"]]
        unsealed = [row for row in rows if not ctx.secrets.is_sealed(row["secret"])]
        for row in unsealed:
            store.update_source(tx.conn, row["name"], secret=ctx.secrets.seal(row["secret"]))
    return len(unsealed)


def _stored(ctx: Context, row: dict[str, Any]) -> StoredSource:
    data = row["spec"]
    if data.get("verify") == "hmac" and "signed" not in data:
        # Stored before timestamped signatures existed: its sender signs the body alone.
        data = {**data, "signed": "body"}
    spec = SourceSpec.model_validate(data)
    if spec.secret_env:
        secret = os.environ.get(spec.secret_env)
    else:
        secret = _opened(ctx, spec.name, row["secret"])
    return StoredSource(
        id=int(row["id"]),
        spec=spec,
        secret=secret,
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
        checkpoint=row["checkpoint"],
        checkpoint_at=row["checkpoint_at"],
        next_sync_at=row["next_sync_at"],
    )


def _opened(ctx: Context, name: str, stored: str | None) -> str | None:
    if not stored:
        return None
    try:
        return ctx.secrets.open(stored)
    except SecretUnreadable as exc:
        # Said, not raised: the other sources keep working, and this one refuses deliveries
        # until its secret is entered again.
        log.warning("source %s: %s", name, exc)
        return None
