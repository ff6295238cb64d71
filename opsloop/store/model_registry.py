"""Model versions: each training run that produced a model, with its artifact, metrics, features
and training window. Per model name, at most one `champion` (used by decisions) and at most one
`challenger` (computed in shadow, never used); the rest are `retired`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, bindparam, func, insert, select, update

from opsloop.store.schema import model_versions

ModelStatus = Literal["champion", "challenger", "retired"]
SERVING: tuple[ModelStatus, ...] = ("champion", "challenger")

# Everything but the artifact: listings and the serving check never need the bytes.
_SUMMARY = tuple(column for column in model_versions.c if column.name != "artifact")

_SERVING = (
    select(model_versions.c.id, model_versions.c.version, model_versions.c.status)
    .where(
        model_versions.c.name == bindparam("name"),
        model_versions.c.status.in_(SERVING),
    )
    .order_by(model_versions.c.id)
)


def insert_version(
    conn: Connection,
    *,
    playbook_id: int | None,
    name: str,
    status: ModelStatus,
    kind: str,
    algorithm: str,
    features: list[str],
    metrics: dict[str, Any],
    training: Mapping[str, Any],
    labels_hash: str,
    artifact: bytes,
    artifact_sha256: str,
    library_versions: dict[str, str],
    created_by: str,
    now: datetime,
) -> tuple[int, int]:
    """Store a new version of the model `name`; return (id, version number)."""
    latest = conn.execute(
        select(func.max(model_versions.c.version)).where(model_versions.c.name == name)
    ).scalar_one()
    number = (latest or 0) + 1
    new_id: int = conn.execute(
        insert(model_versions).returning(model_versions.c.id),
        {
            "playbook_id": playbook_id,
            "name": name,
            "version": number,
            "status": status,
            "kind": kind,
            "algorithm": algorithm,
            "features": features,
            "metrics": metrics,
            "training": training,
            "labels_hash": labels_hash,
            "artifact": artifact,
            "artifact_sha256": artifact_sha256,
            "library_versions": library_versions,
            "created_at": now,
            "created_by": created_by,
        },
    ).scalar_one()
    return new_id, number


def serving_versions(conn: Connection, name: str) -> list[tuple[int, int, str]]:
    """(id, version, status) of the champion and challenger of `name`: the cheap check the
    model cache runs before it loads anything."""
    return [(row.id, row.version, row.status) for row in conn.execute(_SERVING, {"name": name})]


def get_version(
    conn: Connection, version_id: int, *, with_artifact: bool = False
) -> dict[str, Any] | None:
    columns = (model_versions,) if with_artifact else _SUMMARY
    row = conn.execute(select(*columns).where(model_versions.c.id == version_id)).first()
    return dict(row._mapping) if row else None


def get_champion(
    conn: Connection, name: str, *, with_artifact: bool = False
) -> dict[str, Any] | None:
    return _with_status(conn, name, "champion", with_artifact=with_artifact)


def get_challenger(
    conn: Connection, name: str, *, with_artifact: bool = False
) -> dict[str, Any] | None:
    return _with_status(conn, name, "challenger", with_artifact=with_artifact)


def _with_status(
    conn: Connection, name: str, status: ModelStatus, *, with_artifact: bool
) -> dict[str, Any] | None:
    columns = (model_versions,) if with_artifact else _SUMMARY
    query = (
        select(*columns)
        .where(model_versions.c.name == name, model_versions.c.status == status)
        .order_by(model_versions.c.id.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def latest_version(conn: Connection, name: str) -> dict[str, Any] | None:
    """The newest version of `name`, whatever its status (its labels hash decides whether
    training again would learn anything new)."""
    query = (
        select(*_SUMMARY)
        .where(model_versions.c.name == name)
        .order_by(model_versions.c.version.desc())
        .limit(1)
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def list_versions(conn: Connection, name: str) -> list[dict[str, Any]]:
    """Every version of `name`, newest first, without the artifacts."""
    query = (
        select(*_SUMMARY)
        .where(model_versions.c.name == name)
        .order_by(model_versions.c.version.desc())
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def set_status(
    conn: Connection, version_id: int, status: ModelStatus, *, only_if: ModelStatus | None = None
) -> bool:
    """Change a version's status; with `only_if`, only when it still has that status (a
    conditional update, so two processes cannot both retire or promote it). True if changed."""
    query = update(model_versions).where(model_versions.c.id == version_id)
    if only_if is not None:
        query = query.where(model_versions.c.status == only_if)
    return conn.execute(query.values(status=status)).rowcount == 1


def retire_others(conn: Connection, name: str, status: ModelStatus, keep: int) -> list[int]:
    """Retire every version of `name` with `status` except `keep`; return the retired ids."""
    query = (
        update(model_versions)
        .where(
            model_versions.c.name == name,
            model_versions.c.status == status,
            model_versions.c.id != keep,
        )
        .values(status="retired")
        .returning(model_versions.c.id)
    )
    return list(conn.execute(query).scalars())


def set_training(conn: Connection, version_id: int, training: Mapping[str, Any]) -> None:
    """Replace what a version says it was trained on (its `training` JSON): a later run that
    found the same labelled rows from a newer ledger keeps the newer fingerprint there."""
    conn.execute(
        update(model_versions)
        .where(model_versions.c.id == version_id)
        .values(training=dict(training))
    )
