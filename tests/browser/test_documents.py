"""A person in a browser: the owner uploads a Markdown file, asks a question and follows the
citation to the passage; a viewer asks too, and a question the documents don't answer says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_playbooks import sign_in_as_owner
from tests.browser.test_sign_in import sign_in
from tests.conftest import LiveServer
from tests.knowledge.files import POLICY_MD
from tests.people import VIEWER

pytestmark = pytest.mark.browser

Shoot = Callable[[Any, str], Path]


def test_the_owner_uploads_a_markdown_file_and_asks_it(
    page: Any, live_app: LiveServer, shoot: Shoot, tmp_path: Path
) -> None:
    policy = tmp_path / "returns-policy.md"
    policy.write_text(POLICY_MD)
    sign_in_as_owner(page, live_app, "/documents")
    assert "No documents yet" in page.inner_text("main")

    page.set_input_files("#file", str(policy))
    page.fill("#upload-collection", "support")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/documents?added=*")
    row = page.get_by_test_id("documents").get_by_role("row", name="returns-policy.md")
    assert "support" in row.inner_text()
    assert "text/markdown" in row.inner_text()

    page.fill("#q", "Do you refund damaged items?")
    # The first question builds the index: with the embeddings extra installed that loads the
    # model too, which takes longer than a click's 10 s on two busy cores.
    page.get_by_role("button", name="Ask").click(timeout=60_000)
    answer = page.get_by_test_id("answer")
    assert "send us a photo within 7 days" in answer.inner_text()
    assert "[1]" in page.get_by_test_id("answer-text").inner_text()
    shoot(page, "documents-answer")
    citation = page.get_by_test_id("citations").get_by_role("link").first
    assert citation.inner_text() == "returns-policy.md › Returns › Damaged goods"
    citation.click()
    page.wait_for_url("**/documents/*#p2")
    assert "send us a photo within 7 days" in page.locator("#p2").inner_text()
    shoot(page, "document")

    page.context.clear_cookies()
    page.goto("/documents")
    sign_in(page, VIEWER.email, VIEWER.password)
    page.wait_for_url("**/documents")
    assert page.locator("#file").count() == 0, "a viewer has no upload form"
    page.fill("#q", "What is the capital of Mongolia?")
    page.get_by_role("button", name="Ask").click()
    assert page.get_by_test_id("abstained").inner_text() == "The documents don't say."
