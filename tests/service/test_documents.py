"""Documents in, answers with citations out, on SQLite and PostgreSQL: real files added,
versioned and removed cleanly (audited), another process sees the change, answers cite only
retrieved passages (checked in code against a loopback model stub), abstain when the documents
don't say, and support-triage drafts cite the passages to the reviewer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsloop.core.errors import InvalidInput, NotFound
from opsloop.service import OpsLoop
from opsloop.store import audit as audit_store
from tests.conftest import Clock, OpsFactory
from tests.fake_llm import Answer, FakeOpenAI
from tests.knowledge.files import HOURS_HTML, POLICY_MD, pdf_bytes

EXAMPLE = Path(__file__).parents[2] / "examples" / "support-triage.yaml"
WARRANTY = pdf_bytes(["Warranty", "Every kettle has a two year warranty from the day of purchase."])


@pytest.fixture
def llm() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


def with_documents(ops: OpsLoop) -> dict[str, int]:
    ids = {}
    for name, content in [
        ("policy.md", POLICY_MD.encode()),
        ("hours.html", HOURS_HTML.encode()),
        ("warranty.pdf", WARRANTY),
    ]:
        ids[name] = ops.ask.add_document(name=name, content=content, actor="olga")["id"]
    return ids


def test_files_of_each_kind_become_passages_with_links(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    ids = with_documents(ops)
    listed = {d["name"]: d for d in ops.ask.list_documents()}
    assert set(listed) == {"policy.md", "hours.html", "warranty.pdf"}
    assert listed["warranty.pdf"]["media_type"] == "application/pdf"
    assert listed["policy.md"]["passages"] == 3

    detail = ops.ask.get_document(ids["policy.md"])
    assert [p["heading"] for p in detail["passage_list"]][:2] == [
        "Returns",
        "Returns › Damaged goods",
    ]
    assert detail["passage_list"][1]["link"] == f"/documents/{ids['policy.md']}#p2"

    [hit, *_] = ops.ask.search_passages("How long is the kettle warranty?")
    assert hit["document_name"] == "warranty.pdf"
    assert hit["link"] == f"/documents/{ids['warranty.pdf']}#p1"


def test_adding_a_name_again_makes_a_version_and_the_same_bytes_change_nothing(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    first = ops.ask.add_document(name="policy.md", content=POLICY_MD.encode(), actor="olga")
    again = ops.ask.add_document(name="policy.md", content=POLICY_MD.encode(), actor="olga")
    assert (first["status"], again["status"], again["version"]) == ("created", "unchanged", 1)

    changed = POLICY_MD.replace("30 days", "60 days")
    newer = ops.ask.add_document(name="policy.md", content=changed.encode(), actor="rui")
    assert (newer["id"], newer["version"], newer["status"]) == (first["id"], 2, "updated")
    texts = [p["text"] for p in ops.ask.get_document(first["id"])["passage_list"]]
    assert any("60 days" in t for t in texts)
    assert not any("30 days" in t for t in texts), "the old version's passages are gone"

    other = ops.ask.add_document(
        name="policy.md", content=POLICY_MD.encode(), collection="wholesale", actor="olga"
    )
    assert other["id"] != first["id"], "a collection has its own names"

    with ops.ctx.db.read() as conn:
        trail = audit_store.trail(conn, "document", first["id"])
    assert [(row["verb"], row["actor"], row["detail"]["version"]) for row in trail] == [
        ("document.created", "olga", 1),
        ("document.updated", "rui", 2),
    ]


def test_a_removed_document_is_gone_with_its_passages_and_audited(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    ids = with_documents(ops)
    assert ops.ask.search_passages("bank holidays")
    ops.ask.delete_document(ids["hours.html"], actor="olga")

    assert "hours.html" not in {d["name"] for d in ops.ask.list_documents()}
    assert all(h["document_name"] != "hours.html" for h in ops.ask.search_passages("bank holidays"))
    with pytest.raises(NotFound):
        ops.ask.get_document(ids["hours.html"])
    with pytest.raises(NotFound):
        ops.ask.delete_document(ids["hours.html"], actor="olga")
    with ops.ctx.db.read() as conn:
        [*_, removed] = audit_store.trail(conn, "document", ids["hours.html"])
    assert (removed["verb"], removed["detail"]["name"]) == ("document.removed", "hours.html")


def test_another_process_sees_added_and_removed_documents(
    make_ops: OpsFactory, database_url: str
) -> None:
    server = make_ops(database_url)
    assert server.ask.search_passages("kettle warranty") == []
    cli = make_ops(database_url)
    added = cli.ask.add_document(name="warranty.pdf", content=WARRANTY, actor="olga")
    assert [h["document_name"] for h in server.ask.search_passages("kettle warranty")] == [
        "warranty.pdf"
    ]
    cli.ask.delete_document(added["id"], actor="olga")
    assert server.ask.search_passages("kettle warranty") == []


def test_collections_filter_search_and_answers(make_ops: OpsFactory, database_url: str) -> None:
    ops = make_ops(database_url)
    ops.ask.add_document(name="policy.md", content=POLICY_MD.encode(), actor="o")
    ops.ask.add_document(
        name="hours.html", content=HOURS_HTML.encode(), collection="shop", actor="o"
    )
    assert ops.ask.list_collections() == ["default", "shop"]
    assert [d["name"] for d in ops.ask.list_documents(collection="shop")] == ["hours.html"]
    assert ops.ask.search_passages("shop opening hours", collection="default") == []
    answer = ops.ask.answer_question("When does the shop open?", collection="shop")
    assert not answer["abstained"]
    assert {c["collection"] for c in answer["citations"]} == {"shop"}


def test_bad_input_is_refused_naming_the_file_or_field(
    make_ops: OpsFactory, sqlite_url: str
) -> None:
    ops = make_ops(sqlite_url)
    with pytest.raises(InvalidInput, match=r"scan\.pdf: has no text layer"):
        ops.ask.add_document(name="scan.pdf", content=pdf_bytes([]), actor="o")
    with pytest.raises(InvalidInput, match="collection"):
        ops.ask.add_document(name="a.md", content=b"text", collection="no spaces", actor="o")
    with pytest.raises(InvalidInput, match="question is empty"):
        ops.ask.answer_question("   ")
    assert ops.ask.list_documents() == []


def test_without_a_model_the_answer_is_the_best_passages_with_links(
    make_ops: OpsFactory, database_url: str
) -> None:
    ops = make_ops(database_url)
    ids = with_documents(ops)
    answer = ops.ask.answer_question("Do you refund damaged items?")
    assert answer["written_by"] == "extract"
    assert not answer["abstained"]
    first = answer["citations"][0]
    assert first["heading"] == "Returns › Damaged goods"
    assert first["link"] == f"/documents/{ids['policy.md']}#p2"
    assert answer["text"].splitlines()[0].endswith("[1]")
    retrieved = {(p["document_id"], p["ordinal"]) for p in answer["passages"]}
    assert {(c["document_id"], c["ordinal"]) for c in answer["citations"]} <= retrieved


def test_with_no_documents_or_nothing_close_the_answer_abstains(
    make_ops: OpsFactory, database_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(database_url, llm={"url": llm.url, "model": "tiny", "max_retries": 0})
    empty = ops.ask.answer_question("Do you refund damaged items?")
    assert (empty["abstained"], empty["text"]) == (True, "The documents don't say.")
    assert empty["written_by"] == "extract", "no model was asked"
    with_documents(ops)
    far = ops.ask.answer_question("What is the capital of Mongolia?")
    assert far["abstained"]
    assert far["citations"] == []
    assert llm.requests == [], "retrieval alone decides to abstain: no model call"


def test_a_models_answer_keeps_only_sentences_citing_passages_it_was_shown(
    make_ops: OpsFactory, database_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(database_url, llm={"url": llm.url, "model": "tiny", "max_retries": 0})
    with_documents(ops)
    llm.then(
        Answer(
            content="Yes, send a photo within 7 days and we refund it in full [1]. "
            "We also pay for your taxi [42]. Have a lovely day!"
        )
    )
    answer = ops.ask.answer_question("Do you refund damaged items?")
    assert answer["written_by"] == "llm"
    assert answer["text"] == "Yes, send a photo within 7 days and we refund it in full [1]."
    [cited] = answer["citations"]
    assert cited["heading"] == "Returns › Damaged goods"
    [request] = llm.requests
    shown = request.user_content["passages"]
    assert shown[0]["n"] == 1
    assert "damaged" in shown[0]["text"]
    assert request.user_content["question"] == "Do you refund damaged items?"
    retrieved = [(p["document_id"], p["ordinal"]) for p in answer["passages"]]
    assert (cited["document_id"], cited["ordinal"]) in retrieved
    assert sum(usage["calls"] for usage in ops.decide.llm_usage().values()) == 1, "booked"


def test_a_model_that_cites_nothing_or_says_so_abstains(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(sqlite_url, llm={"url": llm.url, "model": "tiny", "max_retries": 0})
    with_documents(ops)
    llm.then(Answer(content="Sure, refunds are always possible."))
    uncited = ops.ask.answer_question("Do you refund damaged items?")
    assert uncited["abstained"]
    assert uncited["written_by"] == "llm"
    assert "cited" in uncited["reason"]
    llm.then(Answer(content="The documents don't say."))
    said = ops.ask.answer_question("Do you refund damaged kettles bought abroad?")
    assert said["abstained"]
    assert said["citations"] == []


def test_a_failing_model_falls_back_to_the_best_passages(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(sqlite_url, llm={"url": llm.url, "model": "tiny", "max_retries": 0})
    with_documents(ops)
    llm.then(Answer(status=500))
    answer = ops.ask.answer_question("Do you refund damaged items?")
    assert answer["written_by"] == "extract"
    assert not answer["abstained"]
    assert "failed" in answer["reason"]


def test_a_folder_sync_adds_changes_and_removes(
    make_ops: OpsFactory, database_url: str, tmp_path: Path
) -> None:
    ops = make_ops(database_url)
    folder = tmp_path / "handbook"
    (folder / "shop").mkdir(parents=True)
    (folder / "policy.md").write_text(POLICY_MD)
    (folder / "shop" / "hours.html").write_text(HOURS_HTML)
    (folder / "scan.pdf").write_bytes(pdf_bytes([]))
    (folder / ".hidden.md").write_text("# Secret\n\nnot synced\n")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8")
    first = ops.ask.sync_folder(folder, collection="handbook", actor="cron")
    assert sorted(first["added"]) == ["policy.md", "shop/hours.html"]
    assert len(first["failed"]) == 1
    assert "scan.pdf" in first["failed"][0]

    (folder / "policy.md").write_text(POLICY_MD.replace("30 days", "14 days"))
    (folder / "shop" / "hours.html").unlink()
    second = ops.ask.sync_folder(folder, collection="handbook", actor="cron")
    assert (second["updated"], second["removed"], second["added"]) == (
        ["policy.md"],
        ["shop/hours.html"],
        [],
    )
    assert [d["name"] for d in ops.ask.list_documents(collection="handbook")] == ["policy.md"]


# --- support drafts cite the documents -------------------------------------------------------


def ticket(body: str) -> bytes:
    event = {
        "type": "ticket.created",
        "subject": "ticket:1",
        "payload": {
            "email": "sam@example.com",
            "subject": "Broken",
            "body": body,
            "order_id": "A-1",
        },
        "traits": {"name": "Sam", "lifetime_value": 120},
    }
    return json.dumps({"events": [event]}).encode()


def test_a_support_draft_cites_the_documents_to_the_reviewer(
    make_ops: OpsFactory, database_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(
        database_url,
        playbooks=[EXAMPLE.read_text()],
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
    )
    ids = with_documents(ops)
    label = json.dumps({"label": "refund", "confidence": 0.9, "reason": "r"})
    llm.then(
        Answer(content=label),
        Answer(content="Hi Sam,\nSend us a photo within 7 days and we refund it in full [1]. [4]"),
    )
    ops.ingest.body(ticket("My kettle arrived damaged, can I get a refund?"))
    ops.run_jobs()

    [pending] = ops.decide.list_decisions(status="pending")
    text = ops.decide.decision_detail(pending["id"])["explanation"]["text"]
    assert text["draft"] == "Hi Sam,\nSend us a photo within 7 days and we refund it in full."
    assert text["draft_cited"].endswith("in full [1].")
    [first, *_] = text["draft_sources"]
    assert first["cited"]
    assert first["link"] == f"/documents/{ids['policy.md']}#p2"
    assert all(source["n"] <= 3 for source in text["draft_sources"])
    _, draft = llm.requests
    documents = draft.user_content["context"]["documents"]
    assert documents[0]["heading"] == "Returns › Damaged goods"
    assert "[2]" in draft.body["messages"][0]["content"], "the model is told how to cite"

    [item] = ops.review.inbox()["items"]
    assert item["draft_sources"][0]["document_name"] == "policy.md"
    assert item["draft"] == text["draft"]


def test_without_documents_the_draft_is_asked_as_before(
    make_ops: OpsFactory, sqlite_url: str, llm: FakeOpenAI
) -> None:
    ops = make_ops(
        sqlite_url,
        playbooks=[EXAMPLE.read_text()],
        llm={"url": llm.url, "model": "tiny", "max_retries": 0},
    )
    label = json.dumps({"label": "refund", "confidence": 0.9, "reason": "r"})
    llm.then(Answer(content=label), Answer(content="Hi Sam, sorry about that."))
    ops.ingest.body(ticket("My kettle arrived damaged, can I get a refund?"))
    ops.run_jobs()
    [pending] = ops.decide.list_decisions(status="pending")
    text = ops.decide.decision_detail(pending["id"])["explanation"]["text"]
    assert "draft_sources" not in text
    _, draft = llm.requests
    assert set(draft.user_content["context"]) == {"entity.name", "event.payload.order_id"}


def test_the_documents_folder_is_kept_in_step_by_the_running_service(
    make_ops: OpsFactory, database_url: str, clock: Clock, tmp_path: Path
) -> None:
    """Files dropped in the documents folder are answered from within five minutes, a changed
    one is a new version, and a removed one's document goes."""
    folder = tmp_path / "shop-docs"
    ops = make_ops(database_url, documents_dir=folder)
    ops.run_jobs()
    assert ops.ask.list_documents() == [], "no folder yet: nothing to do"
    folder.mkdir()
    (folder / "returns.md").write_text(POLICY_MD)
    clock.advance(minutes=5)
    ops.run_jobs()
    [doc] = ops.ask.list_documents()
    assert (doc["name"], doc["collection"], doc["version"]) == ("returns.md", "folder", 1)
    (folder / "returns.md").write_text(POLICY_MD.replace("30 days", "60 days"))
    clock.advance(minutes=5)
    ops.run_jobs()
    [doc] = ops.ask.list_documents()
    assert doc["version"] == 2
    (folder / "returns.md").unlink()
    clock.advance(minutes=5)
    ops.run_jobs()
    assert ops.ask.list_documents() == []
