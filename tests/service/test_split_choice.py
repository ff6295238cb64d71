"""Files whose order is not time: an export sorted by label makes the time-ordered hold-out
test on labels training never saw. Training says so, and `split="stratified"` holds out a
random share of every label instead, kept with the version (and by later retrains)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opsloop.cli import app
from opsloop.core.errors import Conflict
from opsloop.learning.split_checks import label_order, stratified_split
from opsloop.service import HistorySpec, OpsLoop
from tests.conftest import OpsFactory
from tests.service.test_text_models import PHRASES, THINGS

INTENTS = """
name: intents
subject: ticket
trigger:
  events: ticket.created
text:
  field: Customer message text
  classify:
    using: model
    labels: [billing, delivery, product]
    min_rows: 30
otherwise: route
options:
  route: {}
"""

SESSIONS = """
name: buyers
subject: session
mode: shadow
trigger:
  events: session.imported
features:
  pages: {trait: pages.viewed.total, default: 0}
model:
  as: p_buy
  predicts: session.converted
  within: 1d
  features: [pages]
  min_rows: 40
score: p_buy
otherwise: leave
options:
  leave: {}
"""


def sorted_by_label(path: Path) -> Path:
    """Utterances grouped by intent, no time column: the way intent data sets are shipped."""
    generator = random.Random(7)
    lines = ["Customer message text,intent"]
    for label, count in (("billing", 50), ("delivery", 50), ("product", 20)):
        for _ in range(count):
            text = generator.choice(PHRASES[label]).format(x=generator.choice(THINGS))
            lines.append(f'"{text}",{label}')
    path.write_text("\n".join(lines) + "\n")
    return path


def imported_intents(make_ops: OpsFactory, url: str, tmp_path: Path) -> OpsLoop:
    ops = make_ops(url, playbooks=[INTENTS])
    spec = HistorySpec(
        kind="ticket", file_order=True, event_type="ticket.created", label_column="intent"
    )
    report = ops.ingest.import_history(sorted_by_label(tmp_path / "intents.csv"), spec)
    assert report.label_order is not None, "the import notes it already"
    return ops


def test_a_file_sorted_by_label_is_named_and_a_stratified_split_is_offered(
    make_ops: OpsFactory, database_url: str, tmp_path: Path
) -> None:
    ops = imported_intents(make_ops, database_url, tmp_path)
    assert [f.file for f in ops.ingest.file_order_imports(["ticket.created"])] == [
        str(tmp_path / "intents.csv")
    ]

    by_time = ops.learn.train("intents", actor="test")
    training = by_time["training"]
    assert training["split"] == "time"
    assert training["test"] == 24
    assert (
        "holds 1 labels training never saw (product; 20 of 24 test rows)"
        in (training["label_order"])
    )
    assert by_time["report"]["accuracy"] <= 4 / 24, "20 test messages have a label never trained on"
    # The report says the times are the file's order, not dates: its test period is not one.
    assert (
        f"times are file order, not real dates: {tmp_path / 'intents.csv'} was imported with "
        "--file-order" in " ".join(by_time["report"]["warnings"])
    )

    stratified = ops.learn.train("intents", actor="test", split="stratified")
    assert stratified["status"] != "unchanged", "the same rows, another split: trained"
    training = stratified["training"]
    assert training["split"] == "stratified"
    assert "label_order" not in training
    assert training["test"] == 24
    per_class = {row["label"]: row["support"] for row in stratified["report"]["per_class"]}
    assert per_class == {"billing": 10, "delivery": 10, "product": 4}
    assert stratified["report"]["accuracy"] >= 0.9

    again = ops.learn.train("intents", actor="test")
    assert again["status"] == "unchanged", "a retrain keeps the split the latest version used"
    listing = ops.learn.list_models("intents")
    assert listing["versions"][0]["training"]["split"] == "stratified"


def test_a_tabular_model_on_outcomes_sorted_in_the_file_trains_with_a_stratified_split(
    make_ops: OpsFactory, sqlite_url: str, tmp_path: Path
) -> None:
    generator = random.Random(3)
    rows = [(generator.randint(0, 5), "no") for _ in range(60)]
    rows += [(generator.randint(4, 12), "yes") for _ in range(40)]
    path = tmp_path / "sessions.csv"
    path.write_text("pages.viewed.total,bought\n" + "".join(f"{p},{y}\n" for p, y in rows))
    ops = make_ops(sqlite_url, playbooks=[SESSIONS])
    spec = HistorySpec(kind="session", file_order=True, outcome_column="bought")
    report = ops.ingest.import_history(path, spec)
    assert report.label_order is not None
    assert "2 runs of one label over 100 rows" in (report.label_order)

    with pytest.raises(Conflict) as refused:
        ops.learn.train("buyers", actor="test")
    assert "the test rows need at least 2 yes and 2 no labels; the labels come grouped" in str(
        refused.value
    )
    assert str(refused.value).endswith(
        "train with --split stratified (every label in training and test)"
    )

    trained = ops.learn.train("buyers", actor="test", split="stratified")
    assert trained["training"]["split"] == "stratified"
    assert trained["report"]["test"]["rows"] == 20
    assert trained["report"]["test"]["positives"] == 8, "two fifths, as in all rows"
    assert any("stratified" in note for note in trained["report"]["notes"])
    assert any("times are file order" in w for w in trained["report"]["warnings"])
    assert trained["report"]["roc_auc"] > 0.9
    assert trained["features"] == ["pages"]
    assert trained["report"]["top_features"][0]["feature"] == "pages", (
        "the dotted column is read (a flat key), not an empty nested path"
    )


def test_label_order_tells_grouped_labels_from_mixed_ones() -> None:
    draw = random.Random(1)
    mixed = [draw.choice("abc") for _ in range(300)]
    assert label_order(mixed).warning is None
    drifting = ["a"] * 5 + [draw.choice("ab") for _ in range(200)]
    assert label_order(drifting).warning is None, "some runs, but mixed"
    grouped = sorted(mixed)
    found = label_order(grouped)
    assert (found.runs, found.grouped) == (3, True)
    assert found.unseen_labels == (), "the last fifth is all `c`, which training saw too"
    tail = label_order(["a"] * 50 + ["b"] * 50 + ["c"] * 20)
    assert (tail.unseen_labels, tail.unseen_test_rows, tail.test_rows) == (("c",), 20, 24)
    assert label_order(["a", "b"] * 5).warning is None, "too few rows to say"


def test_a_stratified_split_keeps_each_label_share_and_is_the_same_every_time() -> None:
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 20 + ["d"]
    split = stratified_split(labels)
    held = [labels[i] for i in split.test]
    assert (held.count("a"), held.count("b"), held.count("c"), held.count("d")) == (10, 6, 4, 0)
    assert sorted(split.train + split.test) == list(range(len(labels)))
    assert stratified_split(labels) == split


def test_the_commands_warn_and_train_with_a_stratified_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSLOOP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OPSLOOP_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output.replace("\n", " ")

    export = sorted_by_label(tmp_path / "intents.csv")
    playbook = tmp_path / "intents.yaml"
    playbook.write_text(INTENTS)
    imported = run(
        "import", str(export), "--subject-kind", "ticket", "--event-type", "ticket.created",
        "--label-column", "intent", "--file-order",
    )  # fmt: skip
    assert "Note: the labels come grouped in time order: 3 runs of one label" in imported
    run("playbook", "apply", str(playbook))

    by_time = run("train", "intents")
    assert "tested on the latest 24" in by_time
    assert "warning: the labels come grouped in time order" in by_time
    stratified = run("train", "intents", "--split", "stratified")
    assert "tested on a stratified random 24" in stratified
    assert "the labels come grouped" not in stratified
