"""Text out of real files (Markdown, HTML, PDF, plain text) and cut along the headings."""

from __future__ import annotations

import itertools

import pytest

from opsloop.knowledge.chunking import SEPARATOR, chunk
from opsloop.knowledge.extraction import Block, UnreadableDocument, extract, media_type_of
from tests.knowledge.files import HOURS_HTML, POLICY_MD, encrypted_pdf, pdf_bytes


def test_markdown_passages_keep_their_heading_path() -> None:
    chunks = chunk(extract("policy.md", POLICY_MD.encode(), "text/markdown"))
    assert [(c.ordinal, c.heading) for c in chunks] == [
        (1, "Returns"),
        (2, f"Returns{SEPARATOR}Damaged goods"),
        (3, "Shipping"),
    ]
    assert "send us a photo within 7 days" in chunks[1].text


def test_code_fences_and_underlined_headings_are_read_as_markdown() -> None:
    text = "Prices\n======\n\nTea costs 3.\n\n```\n# not a heading\n```\n"
    blocks = extract("prices.md", text.encode(), "text/markdown")
    assert blocks[0] == Block(1, "Prices")
    assert all(block.text != "not a heading" for block in blocks)
    assert "# not a heading" in blocks[-1].text


def test_html_headings_become_the_path_and_scripts_are_left_out() -> None:
    chunks = chunk(extract("hours.html", HOURS_HTML.encode(), "text/html"))
    assert [c.heading for c in chunks] == [
        "Opening hours",
        f"Opening hours{SEPARATOR}Bank holidays",
    ]
    assert chunks[1].text == "On bank holidays the shop opens at 11 am & closes at 3 pm."
    assert not any("never indexed" in c.text for c in chunks)


def test_a_pdf_is_read_page_by_page() -> None:
    content = pdf_bytes(
        ["Warranty", "Every kettle has a two year warranty."], ["Spare lids cost 4."]
    )
    chunks = chunk(extract("warranty.pdf", content, "application/pdf"))
    assert [c.heading for c in chunks] == ["Page 1", "Page 2"]
    assert "two year warranty" in chunks[0].text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("scan.pdf", pdf_bytes([]), "no text layer"),
        ("locked.pdf", encrypted_pdf(), "encrypted PDF"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "not a readable PDF"),
        ("latin.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("empty.md", b"# Only a heading\n", "no text found"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_with_its_name(
    name: str, content: bytes, reason: str
) -> None:
    with pytest.raises(UnreadableDocument) as raised:
        extract(name, content, media_type_of(name))
    assert name in str(raised.value)
    assert reason in str(raised.value)


def test_the_kind_comes_from_the_name_when_the_browser_says_plain_text() -> None:
    assert media_type_of("faq.md", "text/plain") == "text/markdown"
    assert media_type_of("faq.md", "application/octet-stream") == "text/markdown"
    assert media_type_of("page", "text/html; charset=utf-8") == "text/html"
    assert media_type_of("notes") == "text/plain"


def test_a_long_section_is_cut_into_bounded_passages_that_overlap() -> None:
    words = [f"w{n}" for n in range(500)]
    blocks = [Block(1, "Terms"), Block(0, " ".join(words))]
    chunks = chunk(blocks, max_words=100, overlap=20)
    assert all(len(c.text.split()) <= 100 for c in chunks)
    assert all(c.heading == "Terms" for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert before.text.split()[-20:] == after.text.split()[:20]
    seen = {word for c in chunks for word in c.text.split()}
    assert seen == set(words), "no word is lost at a cut"


def test_paragraphs_are_packed_without_crossing_the_limit() -> None:
    paragraphs = [Block(0, " ".join(["word"] * 30)) for _ in range(5)]
    chunks = chunk(paragraphs, max_words=70, overlap=0)
    assert [len(c.text.split()) for c in chunks] == [60, 60, 30]
    assert "\n\n" in chunks[0].text
