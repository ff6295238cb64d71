"""Which names an expression refers to, found without evaluating it.

Used to check playbooks for typos (`visits_7 >= 3` when the feature is `visits_7d`) and to list
in each explanation the values a condition saw. The expression language itself is zen-engine's;
this module only reads names, so an odd construct can at worst be missed by the check, never
change what an expression computes.
"""

from __future__ import annotations

import re

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})

_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`")
_NAME = re.compile(r"(?<![\w.$#])([A-Za-z_]\w*(?:\??\.[A-Za-z_]\w*)*)(\s*\()?")


def referenced_names(expression: str) -> list[str]:
    """Dotted names the expression reads, in order of first use: `entity.budget`, `visits_7d`."""
    stripped = _STRING.sub('""', expression)
    names: list[str] = []
    for match in _NAME.finditer(stripped):
        name, call = match.group(1).replace("?.", "."), match.group(2)
        if call or name in KEYWORDS:
            continue
        if name not in names:
            names.append(name)
    return names


def root(name: str) -> str:
    return name.split(".", 1)[0]
