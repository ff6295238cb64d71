"""Playbook templates: the built-in playbooks (the repository's `playbooks/`, opsloop/builtin.py)
offered to start from. For each: what it does and what it needs that is not set up, whether a
playbook of its name is installed (at which version and mode, and whether it was changed since),
and which installed playbooks start on the same events. Installing one applies it in
`recommend` mode whatever its file says, and never over a playbook that already has its name.

A template is named by its file (`lead-qualification` is `lead-qualification.yaml`, and its
`name:` says the same, checked by the tests). A name is looked up in the folder's listing, never
joined into a path, so `../x` is simply a template that does not exist.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from opsloop.builtin import builtin_playbooks
from opsloop.core.errors import Conflict, NotFound
from opsloop.core.playbooks import Playbook, content_hash
from opsloop.service.context import Context
from opsloop.service.decide.playbooks import Applied, apply_playbook, load_playbook, trigger_words
from opsloop.service.decide.views import (
    InstalledTemplate,
    TemplateDetail,
    TemplateNeed,
    TemplateSummary,
)
from opsloop.service.deliver.channel_checks import unconfigured
from opsloop.store import playbooks as playbook_store

INSTALL_MODE = "recommend"
"""Every template starts here: each decision waits for a person until it earns `auto`."""

_MODE_LINE = re.compile(r"^mode:[ \t]*(?:shadow|recommend|auto)\b", re.M)

LLM_FIX = (
    "set the language model's address and model in Settings (OPSLOOP_LLM__URL and "
    "OPSLOOP_LLM__MODEL, and OPSLOOP_LLM__API_KEY if the endpoint wants one)"
)


def template_names() -> list[str]:
    """The templates there are, by name."""
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in builtin_playbooks().iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    )


def template_source(name: str) -> tuple[str, str]:
    """(YAML text as it is installed — in recommend mode —, file name for messages)."""
    names = template_names()
    if name not in names:
        raise NotFound(f"no playbook template named {name!r}; the templates are {', '.join(names)}")
    shipped = (builtin_playbooks() / f"{name}.yaml").read_text(encoding="utf-8")
    return in_recommend_mode(shipped), f"{name}.yaml"


def in_recommend_mode(text: str) -> str:
    """The template's text with its top-level `mode:` set to recommend. A template without the
    key runs in recommend already (the default). The text is rewritten, rather than the mode
    stored beside it, so that the version kept says what runs: applying it again later (or
    editing it) does not move the playbook to the file's original mode."""
    return _MODE_LINE.sub(f"mode: {INSTALL_MODE}", text, count=1)


@functools.lru_cache(maxsize=32)
def _parse(text: str, file: str) -> Playbook:
    """Full validation, once per text: the templates are the same for the life of a process."""
    return load_playbook(text, file)[0]


def list_templates(ctx: Context) -> list[TemplateSummary]:
    return [_summary(ctx, name, *template_source(name)) for name in template_names()]


def get_template(ctx: Context, name: str) -> TemplateDetail:
    text, file = template_source(name)
    return {**_summary(ctx, name, text, file), "source": text}


def install_template(ctx: Context, name: str, *, actor: str) -> Applied:
    """Apply template `name` in recommend mode as a new playbook; Conflict when a playbook of
    its name exists (installed before, or written by hand), whatever its content."""
    text, file = template_source(name)
    installed = _installed(ctx, name, text)
    if installed is not None:
        raise Conflict(_already(name, installed))
    return apply_playbook(ctx, text, f"{file} (built-in template)", actor=actor, only_new=True)


def _already(name: str, installed: InstalledTemplate) -> str:
    at = f"version {installed['version']}, " if installed["version"] is not None else ""
    return (
        f"a playbook named {name!r} is already installed ({at}mode {installed['mode']}); "
        f"open it at /playbooks/{name} to change it"
    )


def _summary(ctx: Context, name: str, text: str, file: str) -> TemplateSummary:
    playbook = _parse(text, file)
    active = ctx.catalog.active()
    starts = set(playbook.trigger.starts)
    return {
        "name": name,
        "description": " ".join(playbook.description.split()),
        "subject": playbook.subject,
        "trigger": list(playbook.trigger.starts),
        "trigger_words": trigger_words(ctx, playbook),
        "options": [option.label or key for key, option in playbook.options.items()],
        "uses_llm": playbook.text is not None and playbook.text.needs_llm,
        "needs": needs(ctx, playbook),
        "installed": _installed(ctx, name, text),
        "overlaps": sorted(
            other
            for other, found in active.items()
            if other != name and starts & set(found.compiled.playbook.trigger.starts)
        ),
    }


def needs(ctx: Context, playbook: Playbook) -> list[TemplateNeed]:
    """What the playbook uses outside OpsLoop, each with whether it is set up and, if not, the
    setting that does it. Tasks and trait updates need nothing."""
    found: dict[str, TemplateNeed] = {}
    if playbook.text is not None and playbook.text.needs_llm:
        ready = bool(ctx.settings.llm.url and ctx.settings.llm.model)
        found["llm"] = {
            "what": "a language model",
            "ready": ready,
            "fix": None if ready else LLM_FIX,
            "setting": "llm",
        }
    for option in playbook.options.values():
        for action in option.all_actions():
            what = _channel(action)
            if what is None or what in found:
                continue
            problem = unconfigured(ctx.settings, action)
            found[what] = {
                "what": what,
                "ready": problem is None,
                "fix": problem,
                "setting": "email" if action.kind == "email" else "delivery",
            }
    return list(found.values())


def _channel(action: Any) -> str | None:
    """The channel an action goes out through, for people; None for one that stays inside."""
    kind = action.kind
    if kind == "email":
        return "an email channel (a mail server)"
    if kind == "notify":
        if action.url:
            return "a chat webhook (its address is in the playbook)"
        return f"the chat channel {action.channel!r}" if action.channel else "a chat webhook"
    if kind in ("task", "update_traits"):
        return None
    if action.endpoint:
        return f"the webhook endpoint {action.endpoint!r}"
    return "a webhook (its address is in the playbook)"


def _installed(ctx: Context, name: str, text: str) -> InstalledTemplate | None:
    with ctx.db.read() as conn:
        record = playbook_store.get_playbook(conn, name)
        if record is None:
            return None
        versions = playbook_store.list_versions(conn, record["id"])
    active = next((v for v in versions if v["id"] == record["active_version_id"]), None)
    return {
        "version": active["version"] if active else None,
        "mode": record["mode"],
        "as_shipped": active is not None and active["content_hash"] == content_hash(text),
    }
