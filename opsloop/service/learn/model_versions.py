"""Storing a trained model version, the same way for every kind of model.

Tabular models (`opsloop.service.learn.training`) and text classifiers
(`opsloop.service.learn.text_training`) train and compare differently, but a new version is stored
alike: in one transaction, promoted only if no other version became champion since the
comparison, the previous challenger (and, on promotion, champion) retired, and both the
training and the verdict audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from opsloop.service.context import Context
from opsloop.service.learn.views import TabularTraining, TextTraining, Verdict
from opsloop.store import audit
from opsloop.store import model_registry as model_store

if TYPE_CHECKING:  # scikit-learn loads only when a model is trained
    from opsloop.learning.artifacts import ModelArtifact

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NewVersion:
    playbook_id: int
    name: str
    kind: str
    algorithm: str
    features: list[str]
    metrics: dict[str, Any]
    """The evaluation report."""
    training: TabularTraining | TextTraining
    labels_hash: str
    artifact: ModelArtifact
    trained_detail: dict[str, Any]
    """Headline figures for the `model.trained` audit entry."""


@dataclass(frozen=True, slots=True)
class Stored:
    promoted: bool
    number: int
    message: str


def latest_serving(conn: Connection, name: str) -> dict[str, Any] | None:
    """The newest version that is not retired: a retired one (rejected, or replaced) says
    nothing about whether training again would help."""
    for version in model_store.list_versions(conn, name):
        if version["status"] != "retired":
            return version
    return None


def store_version(
    ctx: Context,
    new: NewVersion,
    verdict: Verdict,
    *,
    compared_with: dict[str, Any] | None,
    actor: str,
    now: datetime,
) -> Stored:
    """Store `new` as champion when `verdict["promoted"]`, else as challenger. `compared_with`
    is the champion the verdict was reached against (None: there was none). `verdict` is
    updated when another process promoted a version meanwhile."""
    name = new.name
    with ctx.db.transaction() as tx:
        conn = tx.conn
        current = model_store.get_champion(conn, name)
        if verdict["promoted"] and _id(current) != _id(compared_with):
            # Another process promoted a model meanwhile: this one was not compared with it.
            verdict["promoted"] = False
            verdict["why"] = "another version became champion meanwhile"
        status: model_store.ModelStatus = "champion" if verdict["promoted"] else "challenger"
        version_id, number = model_store.insert_version(
            conn,
            playbook_id=new.playbook_id,
            name=name,
            status=status,
            kind=new.kind,
            algorithm=new.algorithm,
            features=new.features,
            metrics=new.metrics,
            training=new.training,
            labels_hash=new.labels_hash,
            artifact=new.artifact.data,
            artifact_sha256=new.artifact.sha256,
            library_versions=new.artifact.library_versions,
            created_by=actor,
            now=now,
        )
        retired = model_store.retire_others(conn, name, "challenger", keep=version_id)
        if status == "champion":
            retired += model_store.retire_others(conn, name, "champion", keep=version_id)
        audit.record(
            conn, now, actor, "model.trained", name, {"version": number, **new.trained_detail}
        )
        audit.record(
            conn,
            now,
            actor,
            "model.promoted" if status == "champion" else "model.kept_as_challenger",
            name,
            {"version": number, **verdict, "retired": retired},
        )
    ctx.models.invalidate()
    promoted = status == "champion"
    message = (
        f"{name} version {number} is the new champion: {verdict['why']}"
        if promoted
        else f"{name} version {number} is kept as challenger (shadow): {verdict['why']}"
    )
    log.info(message, extra={"model": name})
    return Stored(promoted, number, message)


def _id(row: dict[str, Any] | None) -> int | None:
    return None if row is None else int(row["id"])
