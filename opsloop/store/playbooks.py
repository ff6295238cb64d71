"""Playbooks and their versions. Each change of content is a new version; decisions point at
the version that made them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from opsloop.store.schema import playbook_versions, playbooks


def get_playbook(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(playbooks).where(playbooks.c.name == name)).first()
    return dict(row._mapping) if row else None


def find_version(conn: Connection, playbook_id: int, content_hash: str) -> dict[str, Any] | None:
    query = select(playbook_versions).where(
        playbook_versions.c.playbook_id == playbook_id,
        playbook_versions.c.content_hash == content_hash,
    )
    row = conn.execute(query).first()
    return dict(row._mapping) if row else None


def create_playbook(conn: Connection, name: str, mode: str, now: datetime) -> int:
    new_id: int = conn.execute(
        insert(playbooks).returning(playbooks.c.id),
        {
            "name": name,
            "mode": mode,
            "active_version_id": None,
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()
    return new_id


def add_version(
    conn: Connection,
    *,
    playbook_id: int,
    content_hash: str,
    source: str,
    file: str,
    created_by: str,
    now: datetime,
) -> tuple[int, int]:
    """Store a new version; return (version id, version number)."""
    latest = conn.execute(
        select(func.max(playbook_versions.c.version)).where(
            playbook_versions.c.playbook_id == playbook_id
        )
    ).scalar_one()
    number = (latest or 0) + 1
    version_id = conn.execute(
        insert(playbook_versions).returning(playbook_versions.c.id),
        {
            "playbook_id": playbook_id,
            "version": number,
            "content_hash": content_hash,
            "source": source,
            "file": file,
            "created_at": now,
            "created_by": created_by,
        },
    ).scalar_one()
    return version_id, number


def activate(conn: Connection, playbook_id: int, version_id: int, mode: str, now: datetime) -> None:
    conn.execute(
        update(playbooks)
        .where(playbooks.c.id == playbook_id)
        .values(active_version_id=version_id, mode=mode, updated_at=now)
    )


def active_playbooks(conn: Connection) -> list[dict[str, Any]]:
    """Every playbook with its active version's source, for compiling."""
    query = (
        select(
            playbooks.c.id,
            playbooks.c.name,
            playbooks.c.mode,
            playbooks.c.updated_at,
            playbook_versions.c.id.label("version_id"),
            playbook_versions.c.version,
            playbook_versions.c.source,
            playbook_versions.c.file,
            playbook_versions.c.content_hash,
        )
        .join(playbook_versions, playbook_versions.c.id == playbooks.c.active_version_id)
        .order_by(playbooks.c.name)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def list_versions(conn: Connection, playbook_id: int) -> list[dict[str, Any]]:
    query = (
        select(playbook_versions)
        .where(playbook_versions.c.playbook_id == playbook_id)
        .order_by(playbook_versions.c.version.desc())
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def catalog_stamp(conn: Connection) -> tuple[Any, ...]:
    """Changes whenever any playbook's version or mode changes: cheap cache invalidation."""
    row = conn.execute(
        select(func.count(), func.max(playbooks.c.updated_at)).select_from(playbooks)
    ).one()
    return tuple(row)


def set_mode(conn: Connection, playbook_id: int, mode: str, now: datetime) -> None:
    conn.execute(
        update(playbooks).where(playbooks.c.id == playbook_id).values(mode=mode, updated_at=now)
    )


def version_source(conn: Connection, playbook: str, version: int) -> tuple[str, str] | None:
    """(source, file) of one version of a playbook, by its name and number."""
    row = conn.execute(
        select(playbook_versions.c.source, playbook_versions.c.file)
        .join(playbooks, playbooks.c.id == playbook_versions.c.playbook_id)
        .where(playbooks.c.name == playbook, playbook_versions.c.version == version)
    ).first()
    return None if row is None else (str(row.source), str(row.file))
