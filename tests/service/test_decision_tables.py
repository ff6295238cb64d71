"""A table-driven playbook through the service, on SQLite and on PostgreSQL: events in, the
decision stored with an explanation that names the table rows that matched."""

from __future__ import annotations

import json

from tests.conftest import Clock, OpsFactory

PLAYBOOK = """\
name: lead-routing
subject: lead
mode: shadow
trigger:
  events: lead.created
features:
  company_size:
    trait: company_size
    default: 0
  industry:
    trait: industry
  pricing_views_30d:
    count: page.viewed
    within: 30d
    where: payload.path == "/pricing"
tables:
  fit:
    label: Company fit
    hit: collect_sum
    rows:
      - label: Mid-size SaaS
        when: {company_size: "[10..500]", industry: saas}
        points: 30
      - label: Budget of 5,000 or more
        when: {entity.budget: ">= 5000"}
        points: 20
  route:
    label: Routing
    hit: priority
    rows:
      - label: Scored high
        when: {score: ">= 80"}
        choose: hot
        priority: 2
      - label: Looked at pricing
        when: {pricing_views_30d: ">= 1"}
        choose: hot
        priority: 1
      - label: A fit
        when: {fit: ">= 30"}
        choose: nurture
        priority: 0
otherwise: ignore
options:
  hot:
    label: Hot lead
  nurture: {}
  ignore: {}
"""


def test_a_table_driven_decision_is_stored_with_the_rows_that_matched(
    make_ops: OpsFactory, database_url: str, clock: Clock
) -> None:
    ops = make_ops(database_url, playbooks=[PLAYBOOK])
    viewed = {
        "type": "page.viewed",
        "subject": "lead:1",
        "payload": {"path": "/pricing"},
        "occurred_at": clock.now.replace(hour=8).isoformat(),
    }
    created = {
        "type": "lead.created",
        "subject": "lead:1",
        "traits": {"company_size": 40, "industry": "saas", "budget": 8000},
    }
    ops.ingest.body(json.dumps({"events": [viewed, created]}).encode())
    ops.run_jobs()

    [decision] = ops.decide.list_decisions()
    assert (decision["choice"], decision["score"], decision["status"]) == ("hot", 50, "logged")
    assert decision["why"] == (
        "Hot lead — score 50 (Routing: Looked at pricing): "
        "Mid-size SaaS +30; Budget of 5,000 or more +20"
    )
    explanation = ops.decide.decision_detail(decision["id"])["explanation"]
    fit, route = explanation["tables"]
    assert (fit["name"], fit["hit"], fit["used"], fit["result"]) == (
        "fit",
        "collect_sum",
        [0, 1],
        50,
    )
    assert fit["rows"][1]["saw"] == {"entity.budget": 8000}
    assert [(row["label"], row["matched"]) for row in route["rows"]] == [
        ("Scored high", False),
        ("Looked at pricing", True),
        ("A fit", True),
    ]
    assert (route["used"], route["result"]) == ([1], "hot")
    assert explanation["chosen_by"] == {
        "rule": None,
        "table": "route",
        "row": 1,
        "label": "Looked at pricing",
        "when": {"pricing_views_30d": ">= 1"},
    }
