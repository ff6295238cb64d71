"""`variants:` on email and notify actions: what is accepted and the errors a writer sees."""

from __future__ import annotations

import pytest

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.playbooks import EmailAction, NotifyAction, parse_playbook

HEAD = """
name: welcome
subject: lead
trigger:
  events: [lead.created]
otherwise: send
"""
OUTCOME = """
outcome:
  success: purchase
  within: 7d
"""


def playbook(action: str, *, outcome: str = OUTCOME, steps: bool = False) -> str:
    where = "steps:\n      - send:\n" if steps else "actions:\n      - "
    indent = " " * (10 if steps else 8)
    body = action.strip().replace("\n", "\n" + indent)
    first = indent if steps else ""
    return f"{HEAD}options:\n  send:\n    {where}{first}{body}\n{outcome}"


EMAIL = """
kind: email
to: a@example.com
subject: Welcome
body: Hello
variants:
  - name: short
    subject: Hi
  - name: long
    subject: Welcome to the shop, {{ subject }}
    body: A longer hello
"""


def messages(text: str) -> list[str]:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_playbook(text, "acme.yaml")
    return [f"{p.field}: {p.message}" for p in caught.value.problems]


def test_email_variants_parse_and_their_templates_are_checked() -> None:
    parsed, _ = parse_playbook(playbook(EMAIL), "acme.yaml")
    [action] = parsed.options["send"].actions
    assert isinstance(action, EmailAction)
    assert [v.name for v in action.variants] == ["short", "long"]
    assert action.variants[1].fields() == {
        "subject": "Welcome to the shop, {{ subject }}",
        "body": "A longer hello",
    }
    paths = [path for path, _ in parsed.templates()]
    assert ("options", "send", "actions", 0, "variants", 1, "subject") in paths


def test_notify_variants_replace_text() -> None:
    text = playbook(
        "kind: notify\ntext: New lead\nvariants:\n  - name: a\n    text: A\n  - name: b\n"
        "    text: B"
    )
    parsed, _ = parse_playbook(text, "acme.yaml")
    [action] = parsed.options["send"].actions
    assert isinstance(action, NotifyAction)
    assert [v.text for v in action.variants] == ["A", "B"]


def test_variants_need_an_outcome_two_names_and_distinct_names() -> None:
    one = EMAIL.split("  - name: long")[0]
    [problem] = messages(playbook(one, outcome=""))[:1]
    found = messages(playbook(one, outcome=""))
    assert any("add `outcome:`" in m for m in found), problem
    assert any("at least two variants" in m for m in found)
    twice = EMAIL.replace("name: long", "name: short")
    assert any("two variants are named 'short'" in m for m in messages(playbook(twice)))


def test_a_variant_must_change_a_field_of_its_kind() -> None:
    empty = EMAIL.replace("    subject: Hi\n", "")
    assert any(
        "changes nothing: give `subject`, `body` or `html`" in m for m in messages(playbook(empty))
    )
    notify = (
        "kind: notify\ntext: T\nvariants:\n  - name: a\n    subject: S\n  - name: b\n    text: B"
    )
    assert any(
        "a variant of a `notify` action replaces `text`, not `subject`" in m
        for m in messages(playbook(notify))
    )


def test_variant_names_and_steps() -> None:
    bad = EMAIL.replace("name: long", "name: Long One")
    assert any(
        m.startswith("options.send.actions[0].variants[1].name: use lowercase letters")
        for m in messages(playbook(bad))
    )
    assert any("not in sequence steps" in m for m in messages(playbook(EMAIL, steps=True)))
