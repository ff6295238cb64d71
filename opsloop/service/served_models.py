"""The trained models decisions use: each playbook's champion (and challenger, run in shadow),
loaded once per model version and kept in memory.

Which versions serve is checked at most once per `ttl` seconds, so a model trained by another
process (`opsloop train` while a server runs) is picked up within about a second; training in
this process invalidates at once. An artifact that fails its checks (corrupt bytes, another
format or library version) is never loaded silently: the version is retired with the reason in
the audit trail, decisions use the playbook's `fallback`, and a retrain is queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opsloop.core.playbooks import ModelSpec
from opsloop.reasoning.predictions import PlaybookModels, Predictor, ServedModel, TextPredictor
from opsloop.store import audit
from opsloop.store import model_registry as model_store
from opsloop.store.database import Tx

log = logging.getLogger(__name__)


# (artifact bytes, its stored row without the bytes) → a predictor; raises ModelArtifactError.
Loader = Callable[[bytes, dict[str, Any]], Predictor | TextPredictor]


@dataclass(slots=True)
class _Entry:
    checked: float
    serving: tuple[tuple[int, int, str], ...]
    models: PlaybookModels


class ServedModels:
    def __init__(
        self,
        load: Loader,
        *,
        queue_retrain: Callable[[Tx, str, str], None],
        clock: Callable[[], datetime],
        ttl: float = 1.0,
    ) -> None:
        self._load = load
        self._queue_retrain = queue_retrain
        self._clock = clock
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._loaded: dict[int, ServedModel] = {}
        self._rejected: dict[str, str] = {}
        """Per model name, why its last champion was rejected: said until a new one serves."""

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()

    def for_playbook(self, tx: Tx, playbook: str, spec: ModelSpec) -> PlaybookModels:
        """The playbook's serving models, in the caller's transaction (a rejected artifact is
        retired and its retrain queued in it)."""
        # Imported here: the datasets module loads the feature code (about 14 ms), which a
        # process that serves no model never needs at start-up.
        from opsloop.learning.datasets import model_name

        return self.for_name(tx, playbook, model_name(playbook, spec))

    def for_name(self, tx: Tx, playbook: str, name: str) -> PlaybookModels:
        """`for_playbook` by the stored model name (text models: `<playbook>:text:<as>`)."""
        entry = self._entries.get(name)
        if entry is not None and time.monotonic() - entry.checked < self.ttl:
            return entry.models
        with self._lock:
            serving = tuple(model_store.serving_versions(tx.conn, name))
            if entry is not None and entry.serving == serving:
                entry.checked = time.monotonic()
                return entry.models
            models, clean = self._assemble(tx, playbook, name, serving)
            # Only a clean load is cached: after a rejection the retired row drops out of
            # `serving` once the transaction commits, and a rollback means trying again.
            if clean:
                self._entries[name] = _Entry(time.monotonic(), serving, models)
            # This model's versions that no longer serve are dropped from memory.
            serving_ids = {version_id for version_id, _, _ in serving}
            for version_id, loaded in list(self._loaded.items()):
                if loaded.name == name and version_id not in serving_ids:
                    del self._loaded[version_id]
            return models

    def _assemble(
        self, tx: Tx, playbook: str, name: str, serving: tuple[tuple[int, int, str], ...]
    ) -> tuple[PlaybookModels, bool]:
        found: dict[str, ServedModel] = {}
        rejected: list[str] = []
        for version_id, version, status in serving:
            served = self._loaded.get(version_id)
            if served is None:
                # scikit-learn and skops load here, the first time a model is needed.
                from opsloop.learning.artifacts import ModelArtifactError

                try:
                    served = self._read(tx, version_id)
                except ModelArtifactError as exc:
                    self._reject(tx, playbook, name, (version_id, version, status), str(exc))
                    rejected.append(f"model v{version} was rejected ({exc})")
                    continue
                self._loaded[version_id] = served
            found[status] = served
        note = None
        if rejected:
            self._rejected[name] = "; ".join(rejected) + "; retraining"
        if "champion" in found:
            self._rejected.pop(name, None)
        elif name in self._rejected:
            note = self._rejected[name]
        elif "challenger" in found:
            note = (
                f"no champion yet: version {found['challenger'].version} has not shown skill "
                "and runs in shadow"
            )
        else:
            note = "no trained model yet"
        return PlaybookModels(found.get("champion"), found.get("challenger"), note), not rejected

    def _read(self, tx: Tx, version_id: int) -> ServedModel:
        row = model_store.get_version(tx.conn, version_id, with_artifact=True)
        assert row is not None  # listed as serving in this transaction
        artifact = row.pop("artifact")
        predictor = self._load(bytes(artifact), row)
        return ServedModel(
            name=str(row["name"]),
            version=int(row["version"]),
            version_id=version_id,
            features=tuple(row["features"]),
            predictor=predictor,
        )

    def _reject(
        self, tx: Tx, playbook: str, name: str, version: tuple[int, int, str], reason: str
    ) -> None:
        """Retire a version whose artifact cannot be trusted, say why in the audit trail and
        queue a retrain, all in the caller's transaction."""
        version_id, number, status = version
        log.error(
            "model %s v%d was rejected and retired: %s",
            name,
            number,
            reason,
            extra={"playbook": playbook, "model": name, "version": number},
        )
        if not model_store.set_status(tx.conn, version_id, "retired", only_if=status):  # type: ignore[arg-type]
            return  # another process got there first
        audit.record(
            tx.conn,
            self._clock(),
            "opsloop",
            "model.rejected",
            name,
            {"version": number, "was": status, "reason": reason, "retrain": "queued"},
        )
        self._queue_retrain(tx, playbook, f"model v{number} was rejected: {reason}")
