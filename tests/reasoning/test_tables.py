"""Decision tables: the three hit policies, the cell rules, the explanation that lists every row
with what it saw and whether it matched, and the validation a playbook author sees."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from opsloop.core.decision_tables import cell_test
from opsloop.core.decisions import DecisionDraft
from opsloop.core.errors import PlaybookInvalid, PlaybookProblem
from opsloop.core.events import Event
from opsloop.reasoning.compiler import CompiledPlaybook
from opsloop.reasoning.decide import decide
from opsloop.reasoning.hit_policies import run_table, table_result
from opsloop.service.decide.playbooks import load_playbook

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

LEADS = """\
name: leads
subject: lead
trigger:
  events: lead.created
features:
  size:
    trait: company_size
    default: 0
  industry:
    trait: industry
  budget:
    trait: budget
    default: 0
scorecard:
  - label: Has a budget
    when: budget > 0
    points: 5
tables:
  fit:
    label: Company fit
    hit: collect_sum
    rows:
      - label: Mid-size SaaS
        when: {size: "[10..500]", industry: saas}
        points: 30
      - when: {budget: ">= 5000"}
        points: 20
      - label: Not a fit
        when: {industry: [agency, "consulting"], size: "-"}
        points: -10
  route:
    label: Routing
    hit: priority
    rows:
      - label: Scored high
        when: {score: ">= 50"}
        choose: hot
        priority: 1
      - label: A great fit
        when: {fit: ">= 30"}
        choose: warm
        priority: 2
rules:
  - label: Asked for a call
    when: event.payload.form == "call-me"
    choose: hot
otherwise: cold
options:
  hot:
    label: Hot lead
  warm:
    label: Warm lead
  cold:
    label: Leave for now
"""


def compiled(text: str = LEADS) -> CompiledPlaybook:
    return load_playbook(text, "leads.yaml")[1]


def run(
    playbook: CompiledPlaybook,
    traits: dict[str, Any] | None = None,
    *,
    payload: dict[str, Any] | None = None,
) -> DecisionDraft:
    event = Event(7, "api", "lead.created", "lead:1", T, T, payload or {})
    return decide(
        playbook, version=1, mode="recommend", event=event, history=[], traits=traits or {}
    )


def table(draft: DecisionDraft, name: str) -> dict[str, Any]:
    [found] = [t for t in draft.explanation["tables"] if t["name"] == name]
    return found


def matched(draft: DecisionDraft, name: str) -> list[int]:
    return [row["index"] for row in table(draft, name)["rows"] if row["matched"]]


# --- hit policies ----------------------------------------------------------------------------


def test_collect_sum_adds_the_points_of_every_matching_row_to_the_points() -> None:
    draft = run(compiled(), {"company_size": 40, "industry": "saas", "budget": 8000})
    fit = table(draft, "fit")
    assert (fit["hit"], fit["used"], fit["result"]) == ("collect_sum", [0, 1], 50)
    assert draft.explanation["points"] == 5 + 50
    assert draft.score == 55


def test_first_takes_the_first_matching_row_only() -> None:
    text = LEADS.replace("hit: collect_sum", "hit: first")
    draft = run(compiled(text), {"company_size": 40, "industry": "saas", "budget": 8000})
    fit = table(draft, "fit")
    assert matched(draft, "fit") == [0, 1], "every row is tested, for the explanation"
    assert (fit["used"], fit["result"]) == ([0], 30)
    assert draft.explanation["points"] == 35


def test_first_is_the_default_hit_policy() -> None:
    text = LEADS.replace("    hit: collect_sum\n", "")
    draft = run(compiled(text), {"company_size": 40, "industry": "saas", "budget": 8000})
    assert table(draft, "fit")["hit"] == "first"
    assert table(draft, "fit")["result"] == 30


def test_priority_takes_the_matching_row_with_the_highest_priority() -> None:
    # Both routing rows match (score 55 and fit 50); the second has the higher priority.
    draft = run(compiled(), {"company_size": 40, "industry": "saas", "budget": 8000})
    route = table(draft, "route")
    assert matched(draft, "route") == [0, 1]
    assert (route["used"], route["result"]) == ([1], "warm")
    assert draft.choice == "warm"


def test_priority_ties_go_to_the_earlier_row() -> None:
    text = LEADS.replace("priority: 2", "priority: 1")
    draft = run(compiled(text), {"company_size": 40, "industry": "saas", "budget": 8000})
    assert table(draft, "route")["used"] == [0]
    assert draft.choice == "hot"


def test_a_points_table_where_no_row_matches_gives_zero() -> None:
    draft = run(compiled(), {"industry": "retail"})
    assert table(draft, "fit")["result"] == 0
    assert table(draft, "fit")["used"] == []
    assert draft.explanation["points"] == 0


# --- the explanation -------------------------------------------------------------------------


def test_the_explanation_lists_every_row_with_what_it_saw_whether_it_matched_and_its_output() -> (
    None
):
    draft = run(compiled(), {"company_size": 40, "industry": "agency", "budget": 8000})
    assert table(draft, "fit") == {
        "name": "fit",
        "label": "Company fit",
        "hit": "collect_sum",
        "gives": "points",
        "rows": [
            {
                "index": 0,
                "label": "Mid-size SaaS",
                "when": {"size": "[10..500]", "industry": "saas"},
                "saw": {"size": 40, "industry": "agency"},
                "matched": False,
                "points": 30,
            },
            {
                "index": 1,
                "label": "budget >= 5000",
                "when": {"budget": ">= 5000"},
                "saw": {"budget": 8000},
                "matched": True,
                "points": 20,
            },
            {
                "index": 2,
                "label": "Not a fit",
                "when": {"industry": ["agency", "consulting"], "size": "-"},
                "saw": {"industry": "agency"},
                "matched": True,
                "points": -10,
            },
        ],
        "used": [1, 2],
        "result": 10,
    }


def test_the_reasons_and_why_name_the_rows_that_gave_points_and_the_row_that_chose() -> None:
    draft = run(compiled(), {"company_size": 40, "industry": "saas", "budget": 8000})
    assert draft.explanation["reasons"] == "Has a budget +5; Mid-size SaaS +30; budget >= 5000 +20"
    assert draft.explanation["why"] == (
        "Warm lead — score 55 (Routing: A great fit): "
        "Has a budget +5; Mid-size SaaS +30; budget >= 5000 +20"
    )


def test_a_choosing_table_is_named_in_chosen_by() -> None:
    draft = run(compiled(), {"company_size": 40, "industry": "saas", "budget": 8000})
    assert draft.explanation["chosen_by"] == {
        "rule": None,
        "table": "route",
        "row": 1,
        "label": "A great fit",
        "when": {"fit": ">= 30"},
    }


def test_choosing_tables_are_tried_only_when_no_rule_matches() -> None:
    draft = run(compiled(), {"company_size": 40, "industry": "saas"}, payload={"form": "call-me"})
    assert draft.choice == "hot"
    assert draft.explanation["chosen_by"]["label"] == "Asked for a call"
    assert [t["name"] for t in draft.explanation["tables"]] == ["fit"], "route was not tried"


def test_otherwise_applies_when_no_rule_and_no_table_row_chooses() -> None:
    draft = run(compiled(), {"company_size": 3, "industry": "saas"})
    assert table(draft, "route")["result"] is None
    assert draft.choice == "cold"
    assert draft.explanation["chosen_by"] == {"rule": None, "label": "otherwise", "when": None}
    assert draft.explanation["why"] == (
        "Leave for now — score 0 (no rule matched, so the default): "
        "no scorecard line or table row matched"
    )


def test_a_points_tables_result_is_a_name_the_score_and_rules_can_read() -> None:
    text = LEADS.replace("scorecard:", "score: fit * 2\nscorecard:").replace(
        'when: event.payload.form == "call-me"', "when: fit >= 50"
    )
    draft = run(compiled(text), {"company_size": 40, "industry": "saas", "budget": 8000})
    assert draft.score == 100
    assert draft.explanation["chosen_by"]["label"] == "Asked for a call"


def test_a_cell_that_cannot_be_tested_does_not_match_and_says_why() -> None:
    text = LEADS.replace("    default: 0\n  industry:", "  industry:")  # size: null when unset
    draft = run(compiled(text), {"industry": "saas"})
    row = table(draft, "fit")["rows"][0]
    assert row["matched"] is False
    assert row["saw"] == {"size": None, "industry": "saas"}
    assert row["error"] == "size: a value was null or of the wrong type"


def test_rows_can_read_entity_and_event_paths_and_a_row_without_cells_always_matches() -> None:
    text = """\
name: tickets
subject: customer
trigger:
  events: ticket.opened
tables:
  triage:
    rows:
      - when: {entity.plan: pro, event.payload.category: [billing, refund]}
        choose: senior
      - choose: standard
otherwise: standard
options:
  senior: {}
  standard: {}
"""
    playbook = compiled(text)
    senior = run(playbook, {"plan": "pro"}, payload={"category": "refund"})
    assert senior.choice == "senior"
    assert table(senior, "triage")["rows"][0]["saw"] == {
        "entity.plan": "pro",
        "event.payload.category": "refund",
    }
    standard = run(playbook, {"plan": "basic"}, payload={"category": "refund"})
    assert standard.choice == "standard"
    assert standard.explanation["chosen_by"]["label"] == "always"


def test_a_playbook_without_tables_explains_as_before() -> None:
    text = LEADS.split("tables:")[0] + "otherwise: cold\noptions:\n  cold: {}\n"
    draft = run(compiled(text), {"budget": 1})
    assert "tables" not in draft.explanation
    assert draft.explanation["reasons"] == "Has a budget +5"


@pytest.mark.parametrize(
    "traits",
    [
        {"company_size": 40, "industry": "saas", "budget": 8000},
        {"company_size": 3, "industry": "agency"},
        {"industry": None},
    ],
)
def test_the_result_alone_is_the_one_the_explanation_gives(traits: dict[str, Any]) -> None:
    playbook = compiled()
    draft = run(playbook, traits)
    context = {**draft.explanation["features"], "score": draft.score, "fit": 0, "entity": {}}
    for compiled_table in (*playbook.point_tables, *playbook.choice_tables):
        entry, result = run_table(compiled_table, context)
        assert table_result(compiled_table, context) == result == entry["result"]


# --- cells -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "test"),
    [
        ("saas", '"saas"'),
        ("New York", '"New York"'),
        ("mid-market", '"mid-market"'),
        ("ana@example.com", '"ana@example.com"'),
        ('"saas", "retail"', '"saas", "retail"'),
        (">= 100", ">= 100"),
        ("[10..500]", "[10..500]"),
        (10, "10"),
        (2.5, "2.5"),
        (True, "true"),
        ("true", "true"),
        (None, "null"),
        (["saas", 3, None], '"saas", 3, null'),
        ("-", None),
        ("", None),
    ],
)
def test_a_cell_becomes_a_unary_test(cell: Any, test: str | None) -> None:
    assert cell_test(cell) == test


TABLE_OF_ONE = """\
name: one
subject: lead
trigger:
  events: lead.created
features:
  x:
    trait: x
tables:
  t:
    rows:
      - when: {x: CELL}
        points: 1
otherwise: cold
options:
  cold: {}
"""


@pytest.mark.parametrize(
    ("cell", "value", "matches"),
    [
        ("saas", "saas", True),
        ("saas", "SaaS", False),
        ("saas", None, False),
        ("New York", "New York", True),
        ("[saas, retail]", "retail", True),
        ("[saas, retail]", "agency", False),
        ("[1, 2, null]", None, True),
        ("10", 10, True),
        ("10", 10.0, True),
        ("10", "10", False),
        ("true", True, True),
        ("true", 1, False),
        ("null", None, True),
        ("-", None, True),
        ("-", "anything", True),
        ('">= 5000"', 5000, True),
        ('">= 5000"', 4999, False),
        ('"[10..500]"', 500, True),
        ('"(10..500)"', 500, False),
        ('"> 0 and < 10"', 5, True),
        ('"> 0 and < 10"', 10, False),
        ('"< 5, > 10"', 11, True),
        ('"< 5, > 10"', 7, False),
        ('\'"saas", "retail"\'', "retail", True),
        ("\"startsWith($, 'VIP')\"", "VIP-7", True),
    ],
)
def test_what_a_cell_matches(cell: str, value: Any, matches: bool) -> None:
    draft = run(compiled(TABLE_OF_ONE.replace("CELL", cell)), {"x": value})
    assert table(draft, "t")["rows"][0]["matched"] is matches


# --- validation ------------------------------------------------------------------------------


def problems(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(text, "acme.yaml")
    found: list[PlaybookProblem] = caught.value.problems
    assert all(p.file == "acme.yaml" for p in found)
    return [(p.line, p.field, p.message) for p in found]


def test_a_bad_cell_is_reported_with_its_line_and_field() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  budget:
    trait: budget
tables:
  fit:
    rows:
      - when: {budget: ">= = 5000"}       # 11
        points: 10
otherwise: cold
options:
  cold: {}
"""
    [(line, field, message)] = problems(text)
    assert (line, field) == (11, "tables.fit.rows[0].when.budget")
    assert message.startswith("cell '>= = 5000': could not parse the expression")


def test_text_that_is_not_a_test_gets_told_how_to_quote_it() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  industry:
    trait: industry
tables:
  fit:
    rows:
      - when:
          industry: [saas, 3rd party]       # 12
        points: 10
otherwise: cold
options:
  cold: {}
"""
    assert problems(text) == [
        (
            12,
            "tables.fit.rows[0].when.industry[1]",
            "cell '3rd party' is not a test; to match this text, quote it: '\"3rd party\"'",
        )
    ]


def test_a_cell_may_not_read_other_names() -> None:
    text = TABLE_OF_ONE.replace("CELL", '"> budget"')
    [(line, field, message)] = problems(text)
    assert (line, field) == (11, "tables.t.rows[0].when.x")
    assert message == "cell '> budget': a cell tests only its own value, not 'budget'"


def test_an_unknown_input_name_suggests_the_nearest() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  company_size:
    trait: company_size
tables:
  fit:
    rows:
      - when: {company_sise: "[10..500]"}    # 11
        points: 10
otherwise: cold
options:
  cold: {}
"""
    assert problems(text) == [
        (
            11,
            "tables.fit.rows[0].when.company_sise",
            "unknown name 'company_sise'; did you mean 'company_size'?",
        )
    ]


def test_a_points_table_cannot_read_the_score_which_is_not_known_yet() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
tables:
  fit:
    rows:
      - when: {score: ">= 50"}      # 8
        points: 10
otherwise: cold
options:
  cold: {}
"""
    assert problems(text) == [
        (
            8,
            "tables.fit.rows[0].when.score",
            "unknown name 'score'; 'score' is not known yet at this step",
        )
    ]


def test_the_scorecard_cannot_read_a_table_that_runs_after_it() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
scorecard:
  - when: fit > 0                # 6
    points: 1
tables:
  fit:
    rows:
      - points: 10
otherwise: cold
options:
  cold: {}
"""
    [(line, field, message)] = problems(text)
    assert (line, field) == (6, "scorecard[0].when")
    assert message.startswith("unknown name 'fit'; a points table's result is known only after")


def test_a_table_may_not_mix_points_rows_and_choose_rows() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
tables:
  fit:
    rows:
      - when: {entity.size: ">= 10"}
        points: 10
      - when: {entity.size: "< 10"}
        choose: cold                  # 11
otherwise: cold
options:
  cold: {}
"""
    assert problems(text) == [
        (
            11,
            "tables.fit.rows[1].choose",
            "the rows above give points; a table either gives points or chooses an option, "
            "so put these rows in a second table",
        )
    ]


def test_a_row_choosing_an_unknown_option_suggests_the_nearest() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
tables:
  route:
    rows:
      - when: {entity.size: ">= 10"}
        choose: hott                  # 9
otherwise: cold
options:
  hot: {}
  cold: {}
"""
    assert problems(text) == [
        (
            9,
            "tables.route.rows[0].choose",
            "no option named 'hott'; did you mean 'hot'? (options: hot, cold)",
        )
    ]


def test_hit_policies_are_checked() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
tables:
  fit:
    hit: colect_sum                   # 7
    rows:
      - points: 10
otherwise: cold
options:
  cold: {}
"""
    assert problems(text) == [
        (
            7,
            "tables.fit.hit",
            "must be one of first, collect_sum, priority; did you mean 'collect_sum'?",
        )
    ]


def test_collect_sum_is_for_points_and_priority_needs_a_priority_on_every_row() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
tables:
  route:
    hit: collect_sum                  # 7
    rows:
      - choose: cold
  fit:
    hit: priority
    rows:
      - points: 10                    # 13
      - points: 20
        priority: 1
  extra:
    rows:
      - points: 1
        priority: 2                   # 19
otherwise: cold
options:
  cold: {}
"""
    assert problems(text) == [
        (
            7,
            "tables.route.hit",
            "collect_sum adds up points; a table that chooses uses first or priority",
        ),
        (
            13,
            "tables.fit.rows[0]",
            "every row of a `hit: priority` table needs `priority` (highest wins)",
        ),
        (19, "tables.extra.rows[0].priority", "`priority` is only used with `hit: priority`"),
    ]


def test_rows_need_an_output_and_table_names_follow_the_feature_name_rules() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
features:
  budget:
    trait: budget
tables:
  budget:                             # 9
    rows:
      - points: 1
  score:                              # 12
    rows:
      - when: {budget: 1}             # 14
otherwise: cold
options:
  cold: {}
"""
    assert problems(text) == [
        (9, "tables.budget", "'budget' is already a feature; choose another table name"),
        (12, "tables.score", "'score' is reserved; choose another table name"),
        (14, "tables.score.rows[0]", "a row needs `points` (a number) or `choose` (an option)"),
    ]


def test_an_unknown_key_in_a_row_suggests_the_nearest() -> None:
    text = """\
name: acme
subject: lead
trigger:
  events: lead.created
tables:
  fit:
    rows:
      - pionts: 1                     # 8
otherwise: cold
options:
  cold: {}
"""
    assert (8, "tables.fit.rows[0].pionts", "unknown field; did you mean 'points'?") in problems(
        text
    )
