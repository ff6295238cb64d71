"""The playbook form's YAML (opsloop/web/pages/playbook_form_yaml.py), without a server: every
playbook OpsLoop ships or documents comes back from the form as the same playbook; what the form
cannot edit is kept; fields become the YAML a person would write; each problem finds its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsloop.core.errors import PlaybookInvalid
from opsloop.core.playbooks import parse_playbook
from opsloop.service import load_playbook
from opsloop.web.pages.playbook_form_yaml import (
    FormUnreadable,
    build,
    change_rows,
    read_fields,
    read_playbook,
    same_playbook,
)
from tests.test_docs import documented_playbooks
from tests.web.test_playbook_pages import ROUTING, TRIAGE

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    [
        *ROOT.glob("playbooks/*.yaml"),
        *ROOT.glob("examples/*.yaml"),
        *ROOT.glob("opsloop/demo/*.yaml"),
    ]
)
PLAYBOOKS = [
    *((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")) for path in SHIPPED),
    *documented_playbooks(),
    ("tests: triage", TRIAGE),
    ("tests: routing", ROUTING),
]

NEW = {
    "name": "welcome",
    "description": "Greet new customers.",
    "subject": "customer",
    "mode": "recommend",
    "trigger-events": "signup.completed, trial.started",
    "trigger-cooldown": "30d",
    "features-0-name": "orders_30d",
    "features-0-kind": "count",
    "features-0-source": "order.paid",
    "features-0-within": "30d",
    "features-0-default": "0",
    "features-0-kept": "",
    "scorecard-0-label": "Bought already",
    "scorecard-0-when": "orders_30d >= 1",
    "scorecard-0-points": "20",
    "rules-0-when": "score >= 20",
    "rules-0-choose": "thank",
    "otherwise": "greet",
    "options-0-name": "greet",
    "options-0-label": "Welcome email",
    "options-0-actions-0-kind": "email",
    "options-0-actions-0-to": "{{ entity.email }}",
    "options-0-actions-0-subject": "Welcome",
    "options-0-actions-0-body": "Hi {{ entity.first_name or 'there' }},\n\nWelcome aboard.\n",
    "options-0-actions-0-title": "typed for a task, then the kind was changed back",
    "options-1-name": "thank",
    "options-1-actions-0-kind": "task",
    "options-1-actions-0-title": "Thank {{ subject }}",
    "options-1-actions-0-due_in": "1d",
    "options-1-actions-0-sensitive": "true",
    "outcome-success": "project.created",
    "outcome-within": "14d",
}
NEW_YAML = """\
name: welcome
description: Greet new customers.
subject: customer
mode: recommend

trigger:
  events: [signup.completed, trial.started]
  cooldown: 30d

features:
  orders_30d:
    count: order.paid
    within: 30d
    default: 0

scorecard:
  - label: Bought already
    when: orders_30d >= 1
    points: 20

rules:
  - when: score >= 20
    choose: thank

otherwise: greet

options:
  greet:
    label: Welcome email
    actions:
      - kind: email
        to: '{{ entity.email }}'
        subject: Welcome
        body: |
          Hi {{ entity.first_name or 'there' }},

          Welcome aboard.
  thank:
    actions:
      - kind: task
        title: Thank {{ subject }}
        due_in: 1d
        sensitive: true

outcome:
  success: project.created
  within: 14d
"""


@pytest.mark.parametrize(("where", "text"), PLAYBOOKS, ids=[where for where, _ in PLAYBOOKS])
def test_every_shipped_and_documented_playbook_comes_back_from_the_form_unchanged(
    where: str, text: str
) -> None:
    built = build(read_playbook(text))
    assert built.errors == []
    assert same_playbook(built.text, text), f"{where}:\n{built.text}"
    # Written again from its own YAML, the text does not move.
    assert build(read_playbook(built.text)).text == built.text


def test_the_round_trip_covers_the_common_shapes_and_the_kept_ones() -> None:
    texts = dict(PLAYBOOKS)
    onboarding = read_playbook(texts["playbooks/customer-onboarding.yaml"])
    assert set(onboarding.top.kept) == {"review"}
    [option, skip] = onboarding.options
    assert set(option.kept) == {"stop_when", "steps"}
    assert skip.kept == {}
    lead = read_playbook(texts["playbooks/lead-qualification.yaml"])
    assert lead.top.kept == {}, "the built-in lead playbook is all common shapes"
    assert [row.get("kind") for row in lead.features] == [
        "trait", "trait", "count", "count", "count", "days_since",
    ]  # fmt: skip
    assert lead.features[3].get("where") == 'payload.path == "/pricing"'
    assert [a.get("kind") for o in lead.options for a in o.actions] == ["notify", "task", "email"]
    assert lead.options[0].actions[1].kept == {}, "a task's notes are a field"
    routing = read_playbook(ROUTING)
    assert set(routing.top.kept) == {"tables", "guardrails", "model"}
    [discount, traits] = routing.options[0].actions
    assert (discount.get("kind"), discount.get("endpoint")) == ("discount", "shop")
    assert traits.get("traits") == "stage: hot"


def test_a_playbook_filled_in_from_scratch_is_the_yaml_a_person_would_write() -> None:
    form = read_fields(NEW)
    built = build(form)
    assert built.errors == []
    assert built.text == NEW_YAML
    playbook = parse_playbook(built.text)[0]
    assert playbook.trigger.events == ("signup.completed", "trial.started")
    assert playbook.features["orders_30d"].default == 0
    assert playbook.options["thank"].actions[0].guarded


def test_the_shorthand_triggers_fill_the_events_and_are_written_out() -> None:
    one = TRIAGE.replace("trigger:\n  events: ticket.opened", "trigger: ticket.opened")
    many = TRIAGE.replace(
        "trigger:\n  events: ticket.opened", "trigger: [ticket.opened, ticket.reopened]"
    )
    assert read_playbook(one).trigger.get("events") == "ticket.opened"
    assert read_playbook(many).trigger.get("events") == "ticket.opened, ticket.reopened"
    for text in (one, many):
        built = build(read_playbook(text))
        assert "trigger:\n  events: " in built.text
        assert same_playbook(built.text, text)


def test_an_absence_a_schedule_and_a_sequence_are_kept_as_written() -> None:
    absence = TRIAGE.replace(
        "trigger:\n  events: ticket.opened",
        "trigger:\n  after: ticket.opened\n  unless: [ticket.answered]\n  within: 2d",
    )
    form = read_playbook(absence)
    assert form.trigger.values == {}
    assert form.trigger.kept == {
        "after": "ticket.opened",
        "unless": ["ticket.answered"],
        "within": "2d",
    }
    form.top.values["description"] = "Changed in the form."
    built = build(form)
    assert "  unless: [ticket.answered]\n" in built.text
    playbook = parse_playbook(built.text)[0]
    assert playbook.trigger.is_absence
    assert playbook.description == "Changed in the form."


def test_fields_with_several_lines_numbers_and_yaml_values_keep_their_type() -> None:
    text = TRIAGE.replace(
        "description: Escalate urgent tickets, answer the rest.",
        "description: >\n  Escalate urgent tickets,\n  answer the rest.\nscorecard:\n"
        "  - {when: 'true', points: -15}\n  - {when: 'true', points: 2.5}\n"
        "  - {when: 'true', points: 'event.payload.size / 10'}\n"
        "features:\n  plan: {trait: plan, default: '0'}\n  seats: {trait: seats, default: 0}\n"
        "  tier: {trait: tier, default: null}",
    )
    form = read_playbook(text)
    assert form.top.get("description") == "Escalate urgent tickets, answer the rest.\n"
    assert [row.get("points") for row in form.scorecard] == [
        "-15",
        "2.5",
        "event.payload.size / 10",
    ]
    assert [row.get("default") for row in form.features] == ["'0'", "0", "null"]
    built = build(form)
    assert same_playbook(built.text, text)
    for written in ("points: -15\n", "points: 2.5\n", "points: event.payload.size / 10\n"):
        assert written in built.text
    playbook = parse_playbook(built.text)[0]
    assert [f.default for f in playbook.features.values()] == ["0", 0, None]


def test_the_opening_comments_and_the_order_of_the_keys_are_kept() -> None:
    text = "# Triage.\n# Second line.\n" + TRIAGE.replace(
        "autonomy:", "outcome: {success: ticket.solved, within: 3d}\nautonomy:"
    ).replace("name: triage\n", "").replace("rules:", "name: triage\nrules:")
    built = build(read_playbook(text))
    assert built.text.startswith("# Triage.\n# Second line.\ndescription:")
    keys = [line.split(":")[0] for line in built.text.splitlines() if line[:1].isalpha()]
    assert keys == [
        "description", "subject", "mode", "trigger", "name", "rules", "otherwise", "options",
        "outcome", "autonomy",
    ]  # fmt: skip


def test_each_problem_finds_the_field_it_comes_from() -> None:
    fields = {
        **NEW,
        "scorecard-4-when": "ordrs_30d >= 1",
        "scorecard-4-points": "5",
        "options-0-actions-0-to": "{{ entity.email ",
    }
    built = build(read_fields(fields))
    with pytest.raises(PlaybookInvalid) as refused:
        load_playbook(built.text, "form.yaml")
    placed = {built.place(problem.field): problem.message for problem in refused.value.problems}
    assert "unknown name 'ordrs_30d'" in placed["scorecard-4-when"]
    assert placed["options-0-actions-0-to"].startswith("template:")
    assert len(placed) == 2
    # The shape is checked first: a bad duration, at its field.
    built = build(read_fields({**NEW, "outcome-within": "soon"}))
    with pytest.raises(PlaybookInvalid) as refused:
        load_playbook(built.text, "form.yaml")
    [problem] = refused.value.problems
    assert built.place(problem.field) == "outcome-within"
    assert "'soon' is not a duration" in problem.message
    # A problem deeper than any field goes to the nearest one: a webhook body's template.
    assert built.place("options.greet.actions[0].body.text") == "options-0-actions-0-body"
    assert built.place("tables.fit") is None, "what the form does not edit has no field"


def test_what_the_form_itself_refuses_is_said_at_the_field() -> None:
    fields = {
        **NEW,
        "features-1-name": "orders_30d",
        "features-1-kind": "trait",
        "features-1-source": "orders",
        "features-2-name": "",
        "features-2-kind": "count",
        "features-2-label": "No name yet",
        "features-3-name": "plan",
        "features-3-kind": "trait",
        "features-3-source": "",
        "features-4-kind": "count",  # only a kind: a blank row, left out
        "options-0-actions-1-kind": "webhook",
        "options-0-actions-1-endpoint": "crm",
        "options-0-actions-1-data": "lead: [unclosed",
        "options-2-name": "greet",
        "options-2-label": "twice",
    }
    built = build(read_fields(fields))
    errors = dict(built.errors)
    assert (
        errors["features-1-name"] == "another feature is named orders_30d: give each its own name"
    )
    assert errors["features-2-name"] == "give the feature a name"
    assert errors["features-3-source"] == "name the trait it reads, e.g. company_size"
    assert errors["options-0-actions-1-data"].startswith("not a YAML value: YAML syntax")
    assert errors["options-2-name"] == "another option is named greet: give each its own name"
    assert len(errors) == 5
    assert "\n  plan: {}\n" in built.text, "the rest of the form is still written and checked"


def test_a_damaged_hidden_field_is_an_error_not_a_crash() -> None:
    form = read_fields(
        {**NEW, "kept": "[not, a, mapping]", "features-0-kept": "a: [", "order": "x: 1"}
    )
    assert dict(form.errors) == {
        "kept": "the parts the form keeps could not be read: reload the page",
        "features-0": "the parts the form keeps could not be read: reload the page",
        "order": "the parts the form keeps could not be read: reload the page",
    }
    assert dict(build(form).errors).keys() >= {"kept", "features-0", "order"}


def test_rows_are_added_and_removed_by_their_buttons_without_javascript() -> None:
    form = read_fields(NEW)
    assert change_rows(form, "add:scorecard")
    assert [row.key for row in form.scorecard] == [0, 1]
    assert change_rows(form, "add:options-1-actions")
    assert [(a.key, a.get("kind")) for a in form.options[1].actions] == [(0, "task"), (1, "email")]
    assert change_rows(form, "remove:options-0-actions-0")
    assert form.options[0].actions == []
    assert change_rows(form, "remove:features-0")
    assert form.features == []
    for nothing in ("add:steps", "remove:features-9", "remove:options-7-actions-0", "check", "x"):
        assert not change_rows(form, nothing), nothing
    assert "features:" not in build(form).text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("name: [x", "its YAML does not parse"),
        ("- a list", "it is not a mapping"),
        ("name: x\nscorecard: {when: x}", "its scorecard is not a list"),
        ("name: x\nfeatures: [a]", "its features are not a mapping of names"),
        ("name: x\noptions: {a: [b]}", "the option a is not a mapping"),
        ("name: x\ntrigger: 5", "the trigger is not a mapping"),
    ],
)
def test_a_shape_the_form_cannot_show_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(FormUnreadable, match=why):
        read_playbook(text)
