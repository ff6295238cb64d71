"""A text classifier learned from the business's own labelled messages: import a CSV export
with the category a person gave each message, train in one command, and decide with it —
live and in a backtest. No LLM involved."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsloop.core.errors import Conflict
from opsloop.service import HistorySpec, OpsLoop
from tests.conftest import Clock, OpsFactory

PHRASES = {
    "billing": [
        "I was charged twice for {x}",
        "my card was billed again for {x}",
        "please send the invoice for {x}",
        "why is there a second payment for {x}",
    ],
    "delivery": [
        "where is my parcel with {x}",
        "the courier never delivered {x}",
        "tracking for {x} has not moved",
        "when will {x} arrive",
    ],
    "product": [
        "does {x} work with a 220V socket",
        "how do I clean {x}",
        "what colours does {x} come in",
        "is {x} dishwasher safe",
    ],
}
THINGS = ["the kettle", "my toaster", "order 1182", "the blue mug", "the teapot", "a gift card"]

PLAYBOOK = """
name: triage-model
subject: ticket
trigger:
  events: ticket.created
text:
  field: message
  classify:
    using: model
    labels: [billing, delivery, product]
    min_rows: 30
rules:
  - when: category == 'billing' and category_confidence >= 0.5
    choose: to_finance
  - when: category == 'delivery' and category_confidence >= 0.5
    choose: to_warehouse
otherwise: to_support
options:
  to_finance:
    actions: [{kind: task, title: "Billing question"}]
  to_warehouse:
    actions: [{kind: task, title: "Where is it"}]
  to_support:
    actions: [{kind: task, title: "Support"}]
"""


def labelled_export(path: Path, rows: int, start: datetime) -> Path:
    generator = random.Random(4)
    lines = ["ticket,received,message,category"]
    for i in range(rows):
        label = ["billing", "delivery", "product"][i % 3]
        text = generator.choice(PHRASES[label]).format(x=generator.choice(THINGS))
        at = start + timedelta(hours=i)
        lines.append(f'{1000 + i},{at:%Y-%m-%d %H:%M},"{text}",{label}')
    path.write_text("\n".join(lines) + "\n")
    return path


def imported(make_ops: OpsFactory, url: str, tmp_path: Path, clock: Clock) -> OpsLoop:
    ops = make_ops(url, playbooks=[PLAYBOOK])
    export = labelled_export(tmp_path / "tickets.csv", 90, clock() - timedelta(days=20))
    spec = HistorySpec(
        kind="ticket",
        id_column="ticket",
        time_column="received",
        event_type="ticket.created",
        label_column="category",
    )
    ops.ingest.import_history(export, spec)
    return ops


def test_import_train_and_decide_with_the_business_own_categories(
    make_ops: OpsFactory, database_url: str, tmp_path: Path, clock: Clock
) -> None:
    ops = imported(make_ops, database_url, tmp_path, clock)
    assert ops.decide.list_decisions() == [], "imported history is not decided"

    result = ops.learn.train("triage-model", actor="test")
    assert result["status"] == "promoted"
    assert result["model"] == "triage-model:text:category"
    assert result["training"]["rows"] == 90
    assert result["training"]["test"] == 18, "the latest fifth is held out, in time order"
    assert result["report"]["accuracy"] >= 0.9
    assert ops.learn.train("triage-model", actor="test")["status"] == "unchanged"
    listing = ops.learn.list_models("triage-model")
    assert listing["kind"] == "text"
    assert [v["status"] for v in listing["versions"]] == ["champion"]

    event = {
        "type": "ticket.created",
        "subject": "ticket:live-1",
        "payload": {"message": "I was charged twice for my order, please refund the second"},
    }
    ops.ingest.body(json.dumps(event).encode())
    [decision] = ops.decide.list_decisions()
    assert decision["choice"] == "to_finance"
    classify = ops.decide.decision_detail(decision["id"])["explanation"]["text"]["classify"]
    assert classify["by"] == "model"
    assert classify["label"] == "billing"
    assert classify["version"] == 1
    assert "category billing" in decision["why"]


def test_before_a_model_is_trained_messages_wait_for_a_person(
    make_ops: OpsFactory, sqlite_url: str, clock: Clock
) -> None:
    ops = make_ops(sqlite_url, playbooks=[PLAYBOOK])
    event = {"type": "ticket.created", "subject": "ticket:1", "payload": {"message": "hello"}}
    ops.ingest.body(json.dumps(event).encode())
    [decision] = ops.decide.list_decisions()
    assert decision["status"] == "pending"
    holds = ops.decide.decision_detail(decision["id"])["explanation"]["guardrails"]
    assert "could not be classified: no trained model yet" in holds[0]["reason"]
    with pytest.raises(Conflict, match="not enough labelled messages"):
        ops.learn.train("triage-model", actor="test")


def test_a_backtest_replays_the_trained_categories(
    make_ops: OpsFactory, sqlite_url: str, tmp_path: Path, clock: Clock
) -> None:
    ops = imported(make_ops, sqlite_url, tmp_path, clock)
    ops.learn.train("triage-model", actor="test")
    report: dict[str, Any] = ops.learn.backtest(playbook="triage-model", since="30d")
    choices = {row["choice"]: row["decisions"] for row in report["choices"]}
    assert report["counts"]["decisions"] == 90
    # Roughly a third each: the categories came from the model, not the default.
    assert choices["to_finance"] >= 25
    assert choices["to_warehouse"] >= 25
    assert choices["to_support"] >= 25


def test_a_later_label_corrects_an_earlier_one(
    make_ops: OpsFactory, sqlite_url: str, tmp_path: Path, clock: Clock
) -> None:
    ops = imported(make_ops, sqlite_url, tmp_path, clock)
    [first] = ops.ingest.list_events(type="ticket.created", subject="ticket:1000")
    correction = {
        "type": "ticket.labelled",
        "subject": "ticket:1000",
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {"label": "product", "event_id": first["id"]},
    }
    ops.ingest.body(json.dumps(correction).encode())
    from opsloop.service.learn.text_training import read_dataset

    active = ops.ctx.catalog.active()["triage-model"]
    dataset = read_dataset(ops.ctx, active, datetime.now(UTC) + timedelta(days=1))
    [row] = [r for r in dataset.rows if r.event_id == first["id"]]
    assert row.label == "product"
    assert len(dataset.rows) == 90


def random_export(path: Path, rows: int, start: datetime, seed: int) -> Path:
    """Messages whose category has nothing to do with their text."""
    generator = random.Random(seed)
    lines = ["ticket,received,message,category"]
    for i in range(rows):
        said = generator.choice(sorted(PHRASES))
        text = generator.choice(PHRASES[said]).format(x=generator.choice(THINGS))
        label = generator.choice(["billing", "delivery", "product"])
        lines.append(f'{1000 + i},{start + timedelta(hours=i):%Y-%m-%d %H:%M},"{text}",{label}')
    path.write_text("\n".join(lines) + "\n")
    return path


SPEC = HistorySpec(
    kind="ticket",
    id_column="ticket",
    time_column="received",
    event_type="ticket.created",
    label_column="category",
)


@pytest.mark.parametrize(
    ("seed", "rows"),
    [
        pytest.param(1, 60, id="small-1"),
        pytest.param(2, 60, id="small-2"),
        pytest.param(3, 900, id="large"),
    ],
)
def test_messages_whose_labels_are_random_never_make_a_champion(
    make_ops: OpsFactory, database_url: str, tmp_path: Path, clock: Clock, seed: int, rows: int
) -> None:
    ops = make_ops(database_url, playbooks=[PLAYBOOK])
    start = clock() - timedelta(days=60)
    ops.ingest.import_history(random_export(tmp_path / "random.csv", rows, start, seed), SPEC)
    result = ops.learn.train("triage-model", actor="test")
    assert result["status"] == "challenger", result["message"]
    assert "no skill shown yet: accuracy" in result["message"]
    assert result["verdict"]["skill"]["shown"] is False
    listing = ops.learn.list_models("triage-model")
    assert [v["status"] for v in listing["versions"]] == ["challenger"]
    assert (listing["versions"][0]["why"] or "").startswith("no skill shown yet")


def test_a_changed_method_or_label_list_trains_again_and_nothing_new_reads_nothing(
    make_ops: OpsFactory,
    sqlite_url: str,
    tmp_path: Path,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opsloop.learning.text import EmbeddingsUnavailable, embeddings_available
    from opsloop.service.learn import text_training

    ops = imported(make_ops, sqlite_url, tmp_path, clock)
    assert ops.learn.train("triage-model", actor="test")["version"] == 1

    def read_everything(*args: object, **kwargs: object) -> None:
        raise AssertionError("the labelled messages were read")

    with monkeypatch.context() as patched:
        patched.setattr(text_training, "read_dataset", read_everything)
        unchanged = ops.learn.train("triage-model", actor="test")
    assert unchanged["status"] == "unchanged"
    assert "the 90 labelled messages have not changed since version 1" in unchanged["message"]

    listed = PLAYBOOK.replace(
        "labels: [billing, delivery, product]", "labels: [billing, delivery, product, refund]"
    )
    ops.decide.apply_playbook(listed, "test.yaml", actor="test")
    assert ops.learn.train("triage-model", actor="test")["version"] == 2

    embedded = listed.replace("    min_rows: 30\n", "    min_rows: 30\n    method: embeddings\n")
    ops.decide.apply_playbook(embedded, "test.yaml", actor="test")
    if embeddings_available():
        assert ops.learn.train("triage-model", actor="test")["version"] == 3
    else:
        with pytest.raises(EmbeddingsUnavailable, match=r"opsloop\[embeddings\]"):
            ops.learn.train("triage-model", actor="test")
