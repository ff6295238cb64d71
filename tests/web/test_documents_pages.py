"""The documents pages and JSON API through the test client, signed in through the real /login
form: an owner uploads real files (Markdown, HTML, PDF) and removes one, a reviewer and a viewer
read, search and ask but cannot add or remove, and answers cite passages by their anchors."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from opsloop.web.app import create_app
from tests.conftest import OpsFactory
from tests.fake_llm import Answer, FakeOpenAI
from tests.knowledge.files import HOURS_HTML, POLICY_MD, pdf_bytes
from tests.people import OWNER, REVIEWER, VIEWER, add_people
from tests.web.test_playbook_pages import AppFor, Browse, Browser, app_for, browse, text_of

__all__ = ["app_for", "browse"]  # fixtures

EXAMPLE = Path(__file__).parents[2] / "examples" / "support-triage.yaml"
WARRANTY = pdf_bytes(["Warranty", "Every kettle has a two year warranty from the day of purchase."])


def upload(browser: Browser, *files: tuple[str, bytes, str], collection: str = "default") -> object:
    return browser.client.post(
        "/documents/upload",
        data={"csrf_token": browser.csrf, "collection": collection},
        files=[("file", file) for file in files],
    )


def test_an_owner_uploads_files_and_everyone_can_ask(app_for: AppFor, browse: Browse) -> None:
    ops = app_for()
    owner = browse(ops, OWNER)
    empty = owner.get("/documents")
    assert empty.status_code == 200
    assert "No documents yet" in text_of(empty.text)

    answer = upload(
        owner,
        ("policy.md", POLICY_MD.encode(), "text/plain"),
        ("hours.html", HOURS_HTML.encode(), "text/html"),
        ("warranty.pdf", WARRANTY, "application/pdf"),
    )
    assert answer.status_code == 303, answer.text  # type: ignore[attr-defined]
    listed = owner.get(answer.headers["location"])  # type: ignore[attr-defined]
    page = text_of(listed.text)
    for name in ("policy.md", "hours.html", "warranty.pdf"):
        assert name in page
    assert "text/markdown" in page, "a .md sent as text/plain is read as Markdown"

    for person in (REVIEWER, VIEWER):
        reader = browse(ops, person)
        asked = reader.get("/documents?q=Do+you+refund+damaged+items%3F")
        assert asked.status_code == 200
        [link] = re.findall(
            r'<ol class="sources" data-testid="citations">\s*<li><a href="([^"]+)"', asked.text
        )
        assert re.fullmatch(r"/documents/\d+#p2", link)
        assert "Returns › Damaged goods" in text_of(asked.text)
        assert "Upload" not in text_of(asked.text), "only owners see the upload form"
        document = reader.get(link.split("#")[0])
        assert 'id="p2"' in document.text
        assert "send us a photo within 7 days" in text_of(document.text)
        assert "Remove this document" not in document.text


def test_a_question_the_documents_do_not_answer_says_so(app_for: AppFor, browse: Browse) -> None:
    ops = app_for()
    ops.ask.add_document(name="policy.md", content=POLICY_MD.encode(), actor="o")
    page = browse(ops, VIEWER).get("/documents?q=What+is+the+capital+of+Mongolia")
    assert "The documents don't say." in text_of(page.text)
    assert 'data-testid="citations"' not in page.text


def test_an_unreadable_upload_is_named_and_the_others_are_kept(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for()
    owner = browse(ops, OWNER)
    answer = upload(
        owner,
        ("scan.pdf", pdf_bytes([]), "application/pdf"),
        ("policy.md", POLICY_MD.encode(), "text/markdown"),
    )
    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert "scan.pdf: has no text layer" in text_of(answer.text)  # type: ignore[attr-defined]
    assert [d["name"] for d in ops.ask.list_documents()] == ["policy.md"]


def test_the_owner_removes_a_document_and_others_cannot(app_for: AppFor, browse: Browse) -> None:
    ops = app_for()
    added = ops.ask.add_document(name="hours.html", content=HOURS_HTML.encode(), actor="o")
    reviewer = browse(ops, REVIEWER)
    refused = reviewer.post(f"/documents/{added['id']}/delete", {})
    assert refused.status_code == 403
    # A real file in the form: refused, and its temporary file closed (no ResourceWarning,
    # which this suite turns into an error).
    refused_upload = reviewer.client.post(
        "/documents/upload",
        data={"csrf_token": reviewer.csrf, "collection": "default"},
        files=[("file", ("hours.md", b"# Hours\nOpen 9 to 5.", "text/markdown"))],
    )
    assert refused_upload.status_code == 403
    assert len(ops.ask.list_documents()) == 1

    owner = browse(ops, OWNER)
    page = owner.get(f"/documents/{added['id']}")
    assert "Remove this document" in page.text
    removed = owner.post(f"/documents/{added['id']}/delete", {})
    assert removed.status_code == 303
    assert ops.ask.list_documents() == []
    assert owner.get(f"/documents/{added['id']}").status_code == 404
    assert owner.get("/documents/99999999999999999999").status_code == 404


def test_the_collection_filter_keeps_to_one_collection(app_for: AppFor, browse: Browse) -> None:
    ops = app_for()
    ops.ask.add_document(name="policy.md", content=POLICY_MD.encode(), actor="o")
    ops.ask.add_document(
        name="hours.html", content=HOURS_HTML.encode(), collection="shop", actor="o"
    )
    page = browse(ops, VIEWER).get("/documents?collection=shop")
    assert "hours.html" in page.text
    assert "policy.md" not in page.text


def test_the_json_api_adds_reads_searches_answers_and_removes(app_for: AppFor) -> None:
    ops = app_for()
    admin = ops.accounts.create_token("docs", "admin", actor="tests").token
    reader = ops.accounts.create_token("reader", "read", actor="tests").token
    with TestClient(create_app(ops.settings, service=ops)) as client:
        as_admin = {"Authorization": f"Bearer {admin}"}
        as_reader = {"Authorization": f"Bearer {reader}"}
        created = client.post(
            "/api/documents?name=warranty.pdf",
            content=WARRANTY,
            headers={**as_admin, "Content-Type": "application/pdf"},
        )
        assert created.status_code == 201, created.text
        document_id = created.json()["id"]
        again = client.post(
            "/api/documents?name=warranty.pdf",
            content=WARRANTY,
            headers={**as_admin, "Content-Type": "application/pdf"},
        )
        assert (again.status_code, again.json()["status"]) == (200, "unchanged")
        refused = client.post("/api/documents?name=x.md", content=b"# X\n\ntext", headers=as_reader)
        assert refused.status_code == 403

        listed = client.get("/api/documents", headers=as_reader).json()
        assert [d["name"] for d in listed["documents"]] == ["warranty.pdf"]
        detail = client.get(f"/api/documents/{document_id}", headers=as_reader).json()
        assert detail["passage_list"][0]["link"] == f"/documents/{document_id}#p1"
        found = client.get(
            "/api/documents/search", params={"q": "kettle warranty"}, headers=as_reader
        ).json()
        assert found["passages"][0]["document_id"] == document_id
        answer = client.get(
            "/api/documents/answer", params={"q": "How long is the warranty?"}, headers=as_reader
        ).json()
        assert not answer["abstained"]
        assert answer["written_by"] == "extract"
        assert answer["citations"][0]["link"] == f"/documents/{document_id}#p1"
        empty = client.get("/api/documents/answer", params={"q": " "}, headers=as_reader)
        assert empty.status_code == 422

        assert client.delete(f"/api/documents/{document_id}", headers=as_reader).status_code == 403
        assert client.delete(f"/api/documents/{document_id}", headers=as_admin).status_code == 200
        assert client.get(f"/api/documents/{document_id}", headers=as_reader).status_code == 404


def test_the_reviewer_sees_which_passages_a_support_draft_cites(
    make_ops: OpsFactory, sqlite_url: str, browse: Browse
) -> None:
    fake = FakeOpenAI()
    fake.start()
    try:
        ops = make_ops(
            sqlite_url,
            playbooks=[EXAMPLE.read_text()],
            llm={"url": fake.url, "model": "tiny", "max_retries": 0},
        )
        add_people(ops)
        added = ops.ask.add_document(name="policy.md", content=POLICY_MD.encode(), actor="o")
        label = json.dumps({"label": "refund", "confidence": 0.9, "reason": "r"})
        fake.then(
            Answer(content=label),
            Answer(content="Hi Sam,\nSend us a photo within 7 days for a full refund [1]."),
        )
        event = {
            "type": "ticket.created",
            "subject": "ticket:1",
            "payload": {
                "email": "sam@example.com",
                "subject": "Broken",
                "body": "My kettle arrived damaged, can I get a refund?",
                "order_id": "A-1",
            },
            "traits": {"name": "Sam"},
        }
        ops.ingest.body(json.dumps({"events": [event]}).encode())
        ops.run_jobs()
    finally:
        fake.stop()
    [pending] = ops.decide.list_decisions(status="pending")
    reviewer = browse(ops, REVIEWER)
    link = f'href="/documents/{added["id"]}#p2"'
    for url in ("/inbox", f"/decisions/{pending['id']}"):
        page = reviewer.get(url)
        assert 'data-testid="draft-sources"' in page.text, url
        assert link in page.text, url
        assert "for a full refund [1]." in text_of(page.text)
    inbox = reviewer.get("/inbox").text
    [reply] = re.findall(r'<textarea id="draft-\d+"[^>]*>([^<]*)</textarea>', inbox)
    assert reply == "Hi Sam,\nSend us a photo within 7 days for a full refund."


FORMATTED_MD = """\
# Returns

Read **the whole policy** on [our site](https://shop.example.com/returns), or *ask us*;
quote `RET-7` when you write.

- unused items
- in the original box
"""

HOSTILE_MD = """\
# Returns

Refunds go back to the card <script>alert("boom")</script> within five days;
[see the refund form](javascript:alert(document.cookie)) or
[this one](JaVaScRiPt:alert(1)) and <img src=x onerror=alert(2)>.
"""


def passages_of(page: str) -> str:
    """The passages' text as the page shows it, without their headings."""
    return "\n".join(re.findall(r'<div class="passage-text">(.*?)</div>', page, re.DOTALL))


def answer_of(page: str) -> str:
    return page.split('data-testid="answer-text"')[1].split("</div>")[0]


def test_markdown_passages_are_shown_formatted_and_plain_text_stays_text(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for()
    added = ops.ask.add_document(name="returns.md", content=FORMATTED_MD.encode(), actor="o")
    plain = ops.ask.add_document(
        name="notes.txt", content=b"Call **Ana** at [home](https://x.example)", actor="o"
    )
    reader = browse(ops, VIEWER)

    passages = passages_of(reader.get(f"/documents/{added['id']}").text)
    assert "<strong>the whole policy</strong>" in passages
    assert "<em>ask us</em>" in passages
    assert "<code>RET-7</code>" in passages
    assert re.search(r'<a href="https://shop\.example\.com/returns"[^>]*>our site</a>', passages)
    assert re.search(r"<ul>\s*<li>unused items</li>\s*<li>in the original box</li>", passages)
    assert "**" not in passages
    assert "[our site](" not in passages

    as_text = passages_of(reader.get(f"/documents/{plain['id']}").text)
    assert "<strong>" not in as_text
    assert "<a href" not in as_text
    assert "Call **Ana** at [home](https://x.example)" in text_of(as_text)

    answer = answer_of(reader.get("/documents?q=whole+returns+policy+site").text)
    assert "<strong>the whole policy</strong>" in answer
    assert '<a href="https://shop.example.com/returns"' in answer

    token = ops.accounts.create_token("reader", "read", actor="tests").token
    with TestClient(create_app(ops.settings, service=ops)) as client:
        auth = {"Authorization": f"Bearer {token}"}
        detail = client.get(f"/api/documents/{added['id']}", headers=auth).json()
        found = client.get("/api/documents/search", params={"q": "whole policy"}, headers=auth)
    assert "Read **the whole policy** on [our site](https" in detail["passage_list"][0]["text"]
    assert "**the whole policy**" in found.json()["passages"][0]["text"], "the API keeps it raw"


def test_a_hostile_markdown_passage_runs_no_script_and_links_no_javascript(
    app_for: AppFor, browse: Browse
) -> None:
    ops = app_for()
    added = ops.ask.add_document(name="hostile.md", content=HOSTILE_MD.encode(), actor="o")
    reader = browse(ops, VIEWER)
    passages = passages_of(reader.get(f"/documents/{added['id']}").text)
    answer = answer_of(reader.get("/documents?q=refunds+card+refund+form").text)
    for shown in (passages, answer):
        assert "Refunds go back to the card" in text_of(shown)
        assert "<script" not in shown
        assert "&lt;script&gt;" in shown, "the tag is shown as text"
        assert "<img" not in shown
        assert "javascript:" not in " ".join(re.findall(r"<a [^>]*>", shown)).lower()
        assert "<a " not in shown, "neither javascript: link is a link"
    assert "[see the refund form](javascript:alert(document.cookie))" in text_of(passages)


def test_the_ask_page_shows_a_markdown_passage_formatted(app_for: AppFor, browse: Browse) -> None:
    ops = app_for()
    added = ops.ask.add_document(name="returns.md", content=FORMATTED_MD.encode(), actor="o")
    ops.ask.add_document(name="hostile.md", content=HOSTILE_MD.encode(), actor="o")
    reader = browse(ops, VIEWER)
    answered = reader.post("/ask", {"question": "whole policy site"}).text
    assert f'data-ref="document:{added["id"]}#p1"' in answered
    assert "<strong>the whole policy</strong>" in answered
    assert "**the whole policy**" not in answered

    hostile = reader.post("/ask", {"question": "refunds card"}).text
    assert "Refunds go back to the card" in text_of(hostile)
    assert "<script" not in hostile.split('data-testid="answers"')[1]
    assert not re.search(r'href="\s*javascript:', hostile, re.IGNORECASE)
