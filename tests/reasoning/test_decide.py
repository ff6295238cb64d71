"""One playbook run on one triggering event: the scorecard and its explanation, the score, the
rule that chose, the guardrails that hold the decision, and the one-line `why` a reviewer reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from opsloop.core.decisions import DecisionDraft
from opsloop.core.events import Event, HistoryEvent
from opsloop.core.playbooks import Mode
from opsloop.reasoning.compiler import CompiledPlaybook
from opsloop.reasoning.decide import decide, triggers
from opsloop.service.decide.playbooks import load_playbook

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

LEADS = """\
name: leads
subject: lead
trigger:
  events: [lead.created, demo.requested]
features:
  visits:
    count: page.viewed
    within: 7d
  budget_k:
    trait: budget_k
  size:
    trait: size
    default: 0
scorecard:
  - label: Engaged
    when: visits >= 3
    points: 10
  - label: Funded
    when: budget_k > 5
    points: budget_k * 2
  - when: size >= 10 and size <= 500
    points: 5
score: points + 2 * budget_k
rules:
  - label: Big budget
    when: budget_k >= 50
    choose: hot
  - label: Scored high
    when: score >= 30
    choose: hot
  - when: score >= 10
    choose: warm
otherwise: cold
options:
  hot:
    label: Hot lead
  warm: {}
  cold:
    label: Leave for now
"""


def compiled(text: str = LEADS) -> CompiledPlaybook:
    return load_playbook(text, "leads.yaml")[1]


def run(
    playbook: CompiledPlaybook,
    *,
    visits: int = 0,
    traits: dict[str, Any] | None = None,
    mode: Mode = "recommend",
    payload: dict[str, Any] | None = None,
) -> DecisionDraft:
    event = Event(7, "api", "lead.created", "lead:1", T, T, payload or {})
    history = [
        HistoryEvent("page.viewed", T - timedelta(hours=i + 1), {"path": "/"})
        for i in range(visits)
    ]
    return decide(playbook, version=3, mode=mode, event=event, history=history, traits=traits or {})


def test_explanation_lists_every_scorecard_line_with_what_it_saw_and_the_points_it_gave() -> None:
    draft = run(compiled(), visits=4, traits={"budget_k": 6, "size": 3})
    assert draft.explanation["scorecard"] == [
        {
            "label": "Engaged",
            "when": "visits >= 3",
            "saw": {"visits": 4},
            "matched": True,
            "points": 10,
        },
        {
            "label": "Funded",
            "when": "budget_k > 5",
            "saw": {"budget_k": 6},
            "matched": True,
            "points": 12,
        },
        {
            "label": "size >= 10 and size <= 500",
            "when": "size >= 10 and size <= 500",
            "saw": {"size": 3},
            "matched": False,
            "points": 0,
        },
    ]
    assert draft.explanation["points"] == 22
    assert draft.explanation["features"] == {"visits": 4, "budget_k": 6, "size": 3}


def test_points_can_be_given_by_an_expression() -> None:
    small = run(compiled(), traits={"budget_k": 6})
    large = run(compiled(), traits={"budget_k": 20})
    assert small.explanation["scorecard"][1]["points"] == 12
    assert large.explanation["scorecard"][1]["points"] == 40


def test_the_score_formula_adds_to_the_points_and_shows_what_it_saw() -> None:
    draft = run(compiled(), visits=3, traits={"budget_k": 6, "size": 40})
    assert draft.score == 27 + 12
    assert draft.explanation["score"] == {
        "formula": "points + 2 * budget_k",
        "saw": {"points": 27, "budget_k": 6},
        "value": 39,
    }


def test_a_condition_on_a_missing_value_is_not_matched_and_says_why_instead_of_crashing() -> None:
    text = LEADS.replace("score: points + 2 * budget_k", "score: points")
    draft = run(compiled(text), visits=3, traits={})
    funded = draft.explanation["scorecard"][1]
    assert funded == {
        "label": "Funded",
        "when": "budget_k > 5",
        "saw": {"budget_k": None},
        "error": "a value was null or of the wrong type",
        "matched": False,
        "points": 0,
    }
    # Decided as usual: `warm` has no actions, so there is nothing to review (not an error).
    assert (draft.choice, draft.status) == ("warm", "logged")
    assert draft.explanation["nothing_to_do"] is True
    assert draft.score == 10


def test_first_matching_rule_wins_and_later_rules_are_not_tried() -> None:
    draft = run(compiled(), visits=3, traits={"budget_k": 60})
    assert draft.choice == "hot"
    assert draft.explanation["chosen_by"] == {
        "rule": 0,
        "label": "Big budget",
        "when": "budget_k >= 50",
    }
    assert [rule["label"] for rule in draft.explanation["rules"]] == ["Big budget"]


def test_a_later_rule_chooses_when_the_earlier_ones_do_not_match() -> None:
    draft = run(compiled(), visits=3, traits={"budget_k": 1})
    assert (draft.choice, draft.score) == ("warm", 12)
    assert [(r["label"], r["matched"]) for r in draft.explanation["rules"]] == [
        ("Big budget", False),
        ("Scored high", False),
        ("score >= 10", True),
    ]
    assert draft.explanation["rules"][1]["saw"] == {"score": 12}


def test_otherwise_applies_when_no_rule_matches() -> None:
    draft = run(compiled(), traits={"budget_k": 0})
    assert draft.choice == "cold"
    assert draft.explanation["chosen_by"] == {"rule": None, "label": "otherwise", "when": None}
    assert len(draft.explanation["rules"]) == 3


def test_why_names_the_option_the_score_the_rule_and_the_lines_that_counted() -> None:
    hot = run(compiled(), visits=3, traits={"budget_k": 10, "size": 40})
    assert hot.explanation["why"] == (
        "Hot lead — score 55 (Scored high): Engaged +10; Funded +20; size >= 10 and size <= 500 +5"
    )
    cold = run(compiled(), traits={"budget_k": 0})
    assert cold.explanation["why"] == (
        "Leave for now — score 0 (no rule matched, so the default): no scorecard line matched"
    )
    warm = run(compiled(), visits=3, traits={"budget_k": 1})
    assert warm.explanation["why"] == "warm — score 12 (score >= 10): Engaged +10"


def test_a_score_formula_that_fails_gives_an_error_decision_with_a_readable_why() -> None:
    draft = run(compiled(), visits=3, traits={}, mode="auto")
    assert draft.status == "error"
    assert (draft.choice, draft.score) == (None, None)
    assert draft.explanation["why"] == (
        "Could not compute the score (points + 2 * budget_k): a value was null or of the wrong type"
    )
    assert draft.explanation["score"] == {
        "formula": "points + 2 * budget_k",
        "error": "a value was null or of the wrong type",
    }


def test_a_score_formula_that_gives_no_number_is_an_error() -> None:
    text = LEADS.replace("score: points + 2 * budget_k", "score: points / visits")
    draft = run(compiled(text), visits=0, traits={"budget_k": 1})
    assert draft.status == "error"
    assert (
        draft.explanation["why"]
        == "Could not compute the score (points / visits): gave None, not a number"
    )


def test_the_draft_records_its_inputs_for_the_ledger() -> None:
    draft = run(compiled(), visits=1, traits={"budget_k": 2}, payload={"form": "contact"})
    assert draft.inputs == {
        "features": {"visits": 1, "budget_k": 2, "size": 0},
        "entity": {"budget_k": 2},
        "event": {"id": 7, "type": "lead.created", "payload": {"form": "contact"}},
        "version": 3,
    }
    assert draft.explanation["playbook"] == {"name": "leads", "version": 3}
    assert (draft.playbook, draft.subject, draft.event_id) == ("leads", "lead:1", 7)


# --- modes and guardrails ------------------------------------------------------------------

GUARDED = """\
name: support
subject: customer
trigger:
  events: complaint.filed
features:
  amount:
    trait: last_order_amount
    default: 0
rules:
  - when: event.payload.want == "refund"
    choose: refund
  - when: event.payload.want == "credit"
    choose: credit
otherwise: apologize
options:
  apologize:
    actions:
      - kind: webhook
        url: http://127.0.0.1:9/apology
  refund:
    actions:
      - kind: webhook
        url: http://127.0.0.1:9/log
      - kind: refund
        url: http://127.0.0.1:9/refund
  credit:
    actions:
      - kind: update_traits
        sensitive: true
        traits:
          credit: 20
guardrails:
  - when: amount > 500
    reason: Orders over 500 need a manager
"""


def test_an_unguarded_choice_in_auto_mode_acts_at_once() -> None:
    draft = run(compiled(GUARDED), mode="auto", traits={"last_order_amount": 40})
    assert (draft.choice, draft.status, draft.needs_approval) == ("apologize", "auto", False)
    assert draft.explanation["guardrails"] == []


def test_a_refund_waits_for_a_person_even_in_auto_mode() -> None:
    draft = run(compiled(GUARDED), mode="auto", payload={"want": "refund"})
    assert (draft.choice, draft.status, draft.needs_approval) == ("refund", "pending", True)
    assert draft.explanation["guardrails"] == [
        {"action": 1, "reason": "`refund` actions always need a person's approval"}
    ]


def test_an_action_marked_sensitive_waits_for_a_person_even_in_auto_mode() -> None:
    draft = run(compiled(GUARDED), mode="auto", payload={"want": "credit"})
    assert (draft.choice, draft.status, draft.needs_approval) == ("credit", "pending", True)
    assert draft.explanation["guardrails"] == [
        {"action": 0, "reason": "the `update_traits` action is marked sensitive"}
    ]


def test_a_matching_guardrail_holds_the_decision_with_its_reason_and_what_it_saw() -> None:
    draft = run(compiled(GUARDED), mode="auto", traits={"last_order_amount": 800})
    assert (draft.choice, draft.status, draft.needs_approval) == ("apologize", "pending", True)
    assert draft.explanation["guardrails"] == [
        {
            "when": "amount > 500",
            "reason": "Orders over 500 need a manager",
            "saw": {"amount": 800},
        }
    ]


def test_a_guardrail_that_cannot_be_checked_holds_the_decision() -> None:
    text = GUARDED.replace("when: amount > 500", "when: event.payload.total > 500")
    draft = run(compiled(text), mode="auto")
    assert (draft.status, draft.needs_approval) == ("pending", True)
    [hold] = draft.explanation["guardrails"]
    assert hold["reason"] == "Orders over 500 need a manager"
    assert hold["error"] == "a value was null or of the wrong type"


def test_shadow_mode_only_logs_even_a_guarded_choice() -> None:
    draft = run(compiled(GUARDED), mode="shadow", payload={"want": "refund"})
    assert (draft.status, draft.needs_approval) == ("logged", True)


def test_recommend_mode_makes_every_decision_wait() -> None:
    draft = run(compiled(GUARDED), mode="recommend", traits={"last_order_amount": 40})
    assert (draft.choice, draft.status, draft.needs_approval) == ("apologize", "pending", False)


def test_a_playbook_triggers_only_on_its_events_and_subject_kind() -> None:
    playbook = compiled()
    assert triggers(playbook, "lead.created", "lead:1")
    assert triggers(playbook, "demo.requested", "lead:ana@x.co")
    assert not triggers(playbook, "page.viewed", "lead:1")
    assert not triggers(playbook, "lead.created", "customer:1")
