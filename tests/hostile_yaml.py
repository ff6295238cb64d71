"""Hostile YAML for the tests (and bench/yaml_bomb.py): the "billion laughs" bomb, and a guard
that checks aliases are refused on a harmless two-level bomb before a test sends the
nine-level one, so a broken parser fails that test instead of eating the machine's memory."""

from __future__ import annotations

import pytest

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.yaml_source import ALIASES_REFUSED, parse_yaml


def bomb(levels: int = 9) -> str:
    """`levels` lines, each a list of nine aliases of the line above: 9**levels strings once
    expanded (nine levels: 387 million), from 324 bytes."""
    lines = ["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for level in range(1, levels):
        name, below = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{','.join([f'*{below}'] * 9)}]")
    return "\n".join(lines) + "\n"


def refuse_before_sending_a_bomb() -> None:
    """Fail now unless the parser refuses aliases: the two-level bomb costs nothing either way."""
    try:
        parse_yaml(bomb(2), "guard.yaml")
    except PlaybookInvalid as exc:
        if any(ALIASES_REFUSED in p.message for p in exc.problems):
            return
    pytest.fail("parse_yaml follows YAML aliases: the nine-level bomb is not sent", pytrace=False)
