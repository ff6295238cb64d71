"""What setting a source up needs besides storing it (opsloop/service/ingest/sources.py): the
example definitions that ship with OpsLoop, the built-in mappings' names, and the secrets
OpsLoop may choose itself.

The examples are the repository's `examples/sources/*.yaml`, packaged in the wheel as
`opsloop/builtin_sources/` (pyproject.toml, `force-include`). A secret OpsLoop may choose is
one the sender is given rather than one it gives: the signing secret of your own code's HMAC
deliveries or of a Standard Webhooks sender that takes one, and a tracking write key. Stripe,
Shopify, HubSpot and Calendly choose their secrets; they are pasted from their dashboards.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from opsloop.core.errors import NotFound
from opsloop.core.sources import SourceSpec, parse_source
from opsloop.perception.mapping import builtin_names


@dataclass(frozen=True, slots=True)
class SourceExample:
    name: str
    """The file's name without `.yaml`; also the source name it declares."""
    spec: SourceSpec
    notes: str
    """The file's opening comment: what the sender needs set up, in words."""
    text: str


def examples() -> list[SourceExample]:
    """Every packaged example, by name."""
    return list(_examples().values())


def example(name: str) -> SourceExample:
    found = _examples().get(name)
    if found is None:
        raise NotFound(f"no example source named {name!r}")
    return found


def mapping_names() -> list[str]:
    """The built-in mappings (`mapping: stripe`)."""
    return builtin_names()


def may_generate(kind: str, verify: str) -> bool:
    """Whether OpsLoop may choose this source's secret (see the module's text)."""
    return kind == "segment" or (kind == "webhook" and verify in ("hmac", "standard"))


def generated_secret(kind: str, verify: str) -> str | None:
    """A new random secret for the source, or None when its sender chooses the secret."""
    if kind == "segment":
        return "wk_" + secrets.token_urlsafe(24)
    if kind == "webhook" and verify == "hmac":
        return secrets.token_urlsafe(32)
    if kind == "webhook" and verify == "standard":
        # As Standard Webhooks senders write theirs: `whsec_` and 24 random bytes in base64.
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    return None


def _folder() -> Traversable:
    packaged = resources.files("opsloop") / "builtin_sources"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "examples" / "sources"


@cache
def _examples() -> dict[str, SourceExample]:
    found: dict[str, SourceExample] = {}
    folder = _folder()
    if not folder.is_dir():
        return found
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        text = entry.read_text(encoding="utf-8")
        spec, _ = parse_source(text, entry.name)
        name = entry.name.removesuffix(".yaml")
        found[name] = SourceExample(name=name, spec=spec, notes=_notes(text), text=text)
    return found


def _notes(text: str) -> str:
    """The opening comment as one paragraph, without the command-line steps (`opsloop source
    add ...`) a page has its own form for."""
    lines: list[str] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        words = line.lstrip("#").strip()
        if "opsloop source add" in words and lines:
            # "...with a signing key; then" + the command: the sentence ends before it.
            lines[-1] = _ended(lines[-1])
        elif words:
            lines.append(words)
    return _ended(" ".join(lines)) if lines else ""


def _ended(sentence: str) -> str:
    for tail in ("; then", ", then", ":"):
        sentence = sentence.removesuffix(tail)
    return sentence if sentence.endswith(".") else sentence + "."
