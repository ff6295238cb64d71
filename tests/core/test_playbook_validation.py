"""What a playbook author sees when a playbook is wrong: every problem names the file, the line
and the field, and a typo gets the nearest valid name. Each YAML is written out in its test so
the line numbers asserted can be counted by eye (a trailing `# n` marks the lines that matter).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsloop.core.errors import PlaybookInvalid, PlaybookProblem
from opsloop.core.playbooks import content_hash, parse_playbook
from opsloop.service.decide.playbooks import load_playbook

ROOT = Path(__file__).resolve().parents[2]


def problems(text: str, *, full: bool = False) -> list[PlaybookProblem]:
    """The problems reported for `text` in file `acme.yaml`: structural checks only, or the full
    validation the service runs (expressions and templates too) when `full`."""
    validate = load_playbook if full else parse_playbook
    with pytest.raises(PlaybookInvalid) as caught:
        validate(text, "acme.yaml")
    assert all(p.file == "acme.yaml" for p in caught.value.problems)
    return caught.value.problems


def only(text: str, *, full: bool = False) -> tuple[int | None, str, str]:
    [problem] = problems(text, full=full)
    return problem.line, problem.field, problem.message


# --- structure: keys, kinds, options, modes, durations -----------------------------------------


def test_unknown_key_names_its_line_and_suggests_the_nearest_valid_key() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  visits_7d:
    count: page.viewed
    withn: 7d            # 8
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (8, "features.visits_7d.withn", "unknown field; did you mean 'within'?")


def test_unknown_action_kind_suggests_the_nearest_kind() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
otherwise: nurture
options:
  nurture:
    actions:
      - kind: emial      # 9
        to: a@example.com
        subject: Hello
        body: Hi
"""
    assert only(text) == (
        9,
        "options.nurture.actions[0].kind",
        "unknown action kind 'emial'; did you mean 'email'?",
    )


def test_rule_choosing_an_unknown_option_suggests_the_nearest_and_lists_all() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
rules:
  - when: true
    choose: hott         # 7
otherwise: cold
options:
  hot: {}
  cold: {}
"""
    assert only(text) == (
        7,
        "rules[0].choose",
        "no option named 'hott'; did you mean 'hot'? (options: hot, cold)",
    )


def test_otherwise_naming_an_unknown_option_lists_the_options() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
otherwise: warm          # 5
options:
  hot: {}
  cold: {}
"""
    assert only(text) == (5, "otherwise", "no option named 'warm' (options: hot, cold)")


def test_bad_mode_lists_the_three_modes() -> None:
    text = """\
name: acme
subject: lead
mode: automatic          # 3
trigger:
  events: lead.created
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (3, "mode", "must be one of shadow, recommend, auto")


def test_duration_written_in_words_is_refused_with_the_accepted_forms() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
  cooldown: 1 hour       # 5
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (
        5,
        "trigger.cooldown",
        "'1 hour' is not a duration; write a number and a unit: 90s, 15m, 12h, 7d or 2w",
    )


def test_feature_with_two_kinds_says_it_needs_exactly_one() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  visits:                # 6
    count: page.viewed
    trait: visits
otherwise: cold
options:
  cold: {}
"""
    line, field, message = only(text)
    assert (line, field) == (6, "features.visits")
    assert message.startswith("needs exactly one of trait, count, sum, avg")
    assert message.endswith("(found trait and count)")


def test_field_on_a_count_is_refused() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  orders:
    count: order.placed
    field: amount        # 8
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (
        8,
        "features.orders.field",
        "`field` is only used with sum, avg, min, max and last, not count",
    )


def test_sum_without_field_asks_for_the_payload_value_to_read() -> None:
    text = """\
name: acme
subject: customer
trigger:
  events: order.placed
features:
  spent:
    sum: order.placed    # 7
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (
        7,
        "features.spent.sum",
        "`sum` needs `field`: the payload value to read, e.g. field: amount",
    )


def test_a_feature_may_not_take_a_reserved_name() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  score:                 # 6
    trait: score
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (6, "features.score", "'score' is reserved; choose another feature name")


def test_a_missing_required_key_is_named() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
options:
  cold: {}
"""
    assert only(text) == (1, "otherwise", "is required")


def test_a_badly_written_event_type_shows_the_expected_shape() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: [lead.created, "lead created"]   # 4
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (
        4,
        "trigger.events[1]",
        "must look like `lead.created`: letters, digits, _ or -, dot-separated",
    )


# --- YAML itself ---------------------------------------------------------------------------


def test_a_key_written_twice_is_refused_at_its_second_line() -> None:
    text = """\
name: acme
subject: lead
mode: shadow
mode: auto               # 4
trigger:
  events: lead.created
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (4, "mode", "duplicate key")


def test_yaml_syntax_error_names_its_line() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
   cooldown: 1h          # 5
otherwise: cold
options:
  cold: {}
"""
    assert only(text) == (5, "", "YAML syntax: mapping values are not allowed here")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_says_it_is_empty(text: str) -> None:
    assert only(text) == (1, "", "the file is empty")
    assert str(problems(text)[0]) == "acme.yaml:1: the file is empty"


def test_a_file_that_is_not_a_mapping_says_what_a_playbook_is() -> None:
    assert only("- lead.created\n- deal.won\n") == (
        1,
        "",
        "a playbook is a mapping of keys to values",
    )


# --- expressions and templates (full validation) ------------------------------------------


def test_expression_syntax_error_is_reported_at_its_line() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  visits_7d:
    count: page.viewed
    within: 7d
scorecard:
  - when: visits_7d >= = 3     # 10
    points: 10
otherwise: cold
options:
  cold: {}
"""
    line, field, message = only(text, full=True)
    assert (line, field) == (10, "scorecard[0].when")
    assert message.startswith("expression 'visits_7d >= = 3': could not parse the expression")


def test_unknown_name_in_a_condition_suggests_the_feature_meant() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  visits_7d:
    count: page.viewed
    within: 7d
scorecard:
  - when: visits_7 >= 3        # 10
    points: 10
otherwise: cold
options:
  cold: {}
"""
    assert only(text, full=True) == (
        10,
        "scorecard[0].when",
        "unknown name 'visits_7'; did you mean 'visits_7d'?",
    )


def test_a_formula_using_a_feature_defined_below_it_explains_the_order() -> None:
    text = """\
name: acme
subject: customer
trigger:
  events: order.placed
features:
  average_order:
    formula: total_spent / order_count     # 7
  order_count:
    count: order.placed
  total_spent:
    sum: order.placed
    field: amount
otherwise: cold
options:
  cold: {}
"""
    found = [(p.line, p.field, p.message) for p in problems(text, full=True)]
    hint = "features are computed in order, so a formula can only use features above it"
    assert found == [
        (7, "features.average_order.formula", f"unknown name 'total_spent'; {hint}"),
        (7, "features.average_order.formula", f"unknown name 'order_count'; {hint}"),
    ]


def test_template_syntax_error_in_an_email_body_points_at_the_line_in_the_file() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
otherwise: nurture
options:
  nurture:
    actions:
      - kind: email
        to: "{{ entity.email }}"
        subject: Hello
        body: |
          Hi {{ entity.first_name or 'there' }},

          Your code is {{ entity.code }.      # 15

          The team
"""
    assert only(text, full=True) == (
        15,
        "options.nurture.actions[0].body",
        "template: unexpected '}'",
    )


def test_template_syntax_error_in_a_one_line_subject_points_at_that_line() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
otherwise: nurture
options:
  nurture:
    actions:
      - kind: email
        to: "{{ entity.email }}"
        subject: "Ideas for {{ entity.company }"     # 11
        body: Hi
"""
    assert only(text, full=True) == (
        11,
        "options.nurture.actions[0].subject",
        "template: unexpected '}'",
    )


def test_several_structural_problems_are_reported_together_in_file_order() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
otherwise: nurture
options:
  nurture:
    actions:
      - kind: emial      # 9
mode: fast               # 10
features:
  visits:
    count: page.viewed
    withn: 7d            # 14
"""
    assert [(p.line, p.field) for p in problems(text)] == [
        (9, "options.nurture.actions[0].kind"),
        (10, "mode"),
        (14, "features.visits.withn"),
    ]


def test_several_expression_and_template_problems_are_reported_together_in_file_order() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
otherwise: nurture
options:
  nurture:
    actions:
      - kind: notify
        text: "New lead {{ subject }"                # 10
features:
  visits_7d:
    count: page.viewed
    within: 7d
scorecard:
  - when: visits_7 >= 3                              # 16
    points: 10
rules:
  - when: scor > 10                                  # 19
    choose: nurture
"""
    found = problems(text, full=True)
    assert [(p.line, p.field) for p in found] == [
        (10, "options.nurture.actions[0].text"),
        (16, "scorecard[0].when"),
        (19, "rules[0].when"),
    ]
    assert (
        str(found[2]) == "acme.yaml:19: rules[0].when: unknown name 'scor'; did you mean 'score'?"
    )


# --- the built-in playbook and version identity -------------------------------------------


def test_the_built_in_lead_qualification_playbook_is_valid() -> None:
    path = ROOT / "playbooks" / "lead-qualification.yaml"
    playbook, compiled = load_playbook(path.read_text(), str(path))
    assert playbook.name == "lead-qualification"
    assert playbook.mode == "recommend"
    assert list(playbook.options) == ["hot", "nurture"]
    assert len(compiled.scorecard) == 6


def test_content_hash_ignores_trailing_whitespace_but_not_content() -> None:
    text = "name: acme\nsubject: lead\n"
    assert content_hash(text) == content_hash("name: acme   \nsubject: lead\t\n\n\n")
    assert content_hash(text) != content_hash("name: acme\nsubject: ticket\n")
    assert content_hash(text) != content_hash("name: acme\n  subject: lead\n")


def test_a_webhook_action_needs_a_url_or_an_endpoint() -> None:
    text = (
        (ROOT / "playbooks" / "lead-qualification.yaml")
        .read_text()
        .replace(
            "      - kind: task\n",
            "      - kind: webhook\n        body: {a: 1}\n      - kind: task\n",
        )
    )
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(text, "lead.yaml")
    [problem] = caught.value.problems
    assert problem.field == "options.hot.actions[1]"
    assert (
        problem.message
        == "a `webhook` action needs exactly one of `url` or `endpoint` (a name from the webhook_endpoints setting)"
    )
    assert problem.line == text.splitlines().index("      - kind: webhook") + 1


# --- the messages a new user meets first (issue 14's rough edges) ------------------------------

LEAD = (ROOT / "playbooks" / "lead-qualification.yaml").read_text()


def test_a_trigger_written_as_one_event_type_means_those_events() -> None:
    text = LEAD.replace(
        "trigger:\n  events: [lead.created, demo.requested]\n"
        "  cooldown: 1h            # a burst of form posts makes one decision, not five\n",
        "trigger: lead.created\n",
    )
    playbook, _ = load_playbook(text, "acme.yaml")
    assert playbook.trigger.events == ("lead.created",)


def test_points_in_words_say_what_points_may_be() -> None:
    line, field, message = only(
        LEAD.replace("    points: 25\n", "    points: twenty-five\n", 1), full=True
    )
    assert (line, field) == (40, "scorecard[0].points")
    assert message == (
        "points are a number (25, -15) or an expression over the features; 'twenty-five' is neither"
    )


def test_an_unquoted_word_compared_with_a_value_is_told_to_quote_it() -> None:
    text = LEAD.replace("    when: visits_7d >= 5\n", "    when: entity.priority == urgent\n", 1)
    line, field, message = only(text, full=True)
    assert (line, field) == (39, "scorecard[0].when")
    assert message.startswith("unknown name 'urgent'")
    assert message.endswith("for the text urgent, quote it: 'urgent'")
