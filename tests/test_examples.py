"""The example source definitions in examples/sources are valid as shipped and cover every
kind of source, so a new user can copy any of them."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from opsloop.core.sources import SourceKind, parse_source
from opsloop.perception.mapping import Mapping

EXAMPLES = Path(__file__).parent.parent / "examples" / "sources"
FILES = sorted(EXAMPLES.glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_example_source_is_valid(path: Path) -> None:
    spec, secret = parse_source(path.read_text(encoding="utf-8"), str(path))
    assert secret is None, "examples never hold a secret"
    assert spec.name == path.stem
    if spec.mapping is not None:
        Mapping.load(spec.mapping, origin=str(path))


def test_the_examples_show_every_kind_of_source() -> None:
    kinds = {parse_source(p.read_text(encoding="utf-8"), str(p))[0].kind for p in FILES}
    assert kinds == set(get_args(SourceKind))
