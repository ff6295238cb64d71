"""Model artifacts: a round trip gives the same predictions, and anything doubtful — corrupt,
cut short, from another scikit-learn, of an unknown format, naming an untrusted type — is
refused with ModelArtifactError and a reason, never loaded."""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
import zipfile
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.preprocessing import FunctionTransformer

from opsloop.learning.artifacts import (
    MAGIC,
    ModelArtifactError,
    dump_model,
    library_versions,
    load_model,
    read_header,
)
from opsloop.learning.tabular import TabularModel, predict_proba, train_tabular
from opsloop.learning.text import predict_probabilities, train_text


def rows(count: int = 200, seed: int = 5) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        spend = float(rng.gamma(2.0, 50.0))
        region = str(rng.choice(["north", "south", "west"]))
        out.append(
            {
                "t": i,
                "spend": spend,
                "region": region,
                "churned": bool(rng.random() < (0.6 if spend < 60 else 0.15)),
            }
        )
    return out


@pytest.fixture(scope="module")
def tabular() -> TabularModel:
    return train_tabular(
        rows(), target="churned", time_key="t", algorithm="gradient_boosting"
    ).model


def repack(data: bytes, change: dict[str, Any]) -> bytes:
    """The same payload under a header with `change` applied (a valid artifact otherwise)."""
    header = read_header(data)
    payload = data[header.pop("_payload_offset") :]
    header.update(change)
    head = json.dumps(header).encode()
    return MAGIC + struct.pack(">I", len(head)) + head + payload


def reason(data: bytes, **kwargs: Any) -> str:
    with pytest.raises(ModelArtifactError) as caught:
        load_model(data, **kwargs)
    return caught.value.reason


def test_a_tabular_model_round_trips_with_the_same_predictions(tabular: TabularModel) -> None:
    artifact = dump_model(tabular)
    assert artifact.sha256 == hashlib.sha256(artifact.data).hexdigest()
    assert artifact.library_versions == library_versions()
    loaded = load_model(artifact.data, sha256=artifact.sha256)
    assert isinstance(loaded, TabularModel)
    sample = rows(20, seed=9)
    assert predict_proba(loaded, sample) == predict_proba(tabular, sample)


def test_a_text_model_round_trips() -> None:
    texts = ["card not here", "where is card", "card missing", "refund me", "money back", "refund"]
    labels = ["card"] * 3 + ["refund"] * 3
    model = train_text(texts * 2, labels * 2)
    loaded = load_model(dump_model(model).data)
    assert np.array_equal(
        predict_probabilities(loaded, ["card?"]),  # type: ignore[arg-type]
        predict_probabilities(model, ["card?"]),
    )


def test_the_header_records_versions_and_checksum(tabular: TabularModel) -> None:
    header = read_header(dump_model(tabular).data)
    assert header["format"] == 1
    assert header["class"] == "opsloop.learning.tabular.TabularModel"
    assert {"python", "scikit-learn", "numpy", "scipy", "skops"} <= set(header["libraries"])
    assert len(header["payload_sha256"]) == 64


def test_a_flipped_byte_is_refused_as_corrupt(tabular: TabularModel) -> None:
    data = bytearray(dump_model(tabular).data)
    data[-100] ^= 0xFF
    assert reason(bytes(data)) == "corrupt"


def test_bytes_that_differ_from_the_stored_checksum_are_refused(tabular: TabularModel) -> None:
    artifact = dump_model(tabular)
    assert reason(artifact.data, sha256="0" * 64) == "corrupt"


@pytest.mark.parametrize("keep", [5, 20, 200, -10])
def test_truncated_bytes_are_refused(tabular: TabularModel, keep: int) -> None:
    data = dump_model(tabular).data
    assert reason(data[:keep]) == "truncated"


def test_a_model_from_another_scikit_learn_is_refused_with_both_versions(
    tabular: TabularModel,
) -> None:
    data = repack(
        dump_model(tabular).data, {"libraries": {**library_versions(), "scikit-learn": "0.24.2"}}
    )
    with pytest.raises(ModelArtifactError, match=r"0\.24\.2.*retrain") as caught:
        load_model(data)
    assert caught.value.reason == "library_mismatch"


def test_unknown_formats_are_refused(tabular: TabularModel) -> None:
    assert reason(pickle.dumps(tabular)) == "unknown_format"
    assert reason(b"") == "truncated"
    assert reason(repack(dump_model(tabular).data, {"format": 99})) == "unknown_format"


def test_a_payload_naming_an_untrusted_function_is_never_loaded() -> None:
    # What a tampered row could hold: a "model" that would call eval on its input.
    evil = TabularModel(
        algorithm="logistic_regression",
        target="y",
        numeric=["x"],
        categorical=[],
        typical={"x": 0.0},
        pipeline=FunctionTransformer(func=eval),
    )
    payload = skops.io.dumps(evil, compression=zipfile.ZIP_DEFLATED)
    header = {
        "format": 1,
        "serializer": "skops",
        "class": "opsloop.learning.tabular.TabularModel",
        "libraries": library_versions(),
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    head = json.dumps(header).encode()
    data = MAGIC + struct.pack(">I", len(head)) + head + payload
    with pytest.raises(ModelArtifactError, match="eval") as caught:
        load_model(data)
    assert caught.value.reason == "untrusted"
