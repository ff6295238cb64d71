"""Text out of a document's bytes: Markdown, HTML, PDF (pypdf) and plain text, as a list of
blocks, each a heading (with its level) or a paragraph, in reading order.

A file that cannot be read (not UTF-8 text, an encrypted PDF, a PDF of scanned images with no
text layer) raises `UnreadableDocument`, whose message names the file and says why.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath
from typing import Literal

from opsloop.core.errors import FieldError, InvalidInput

MediaType = Literal["text/markdown", "text/html", "application/pdf", "text/plain"]
MEDIA_TYPES: tuple[MediaType, ...] = ("text/markdown", "text/html", "application/pdf", "text/plain")

_BY_SUFFIX: dict[str, MediaType] = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".mdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".text": "text/plain",
}
SUFFIXES = tuple(_BY_SUFFIX)
"""The file name endings a folder source picks up."""


class UnreadableDocument(InvalidInput):
    """A document whose text cannot be read; the message names the file."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__([FieldError("content", f"{name}: {reason}")])


@dataclass(frozen=True, slots=True)
class Block:
    level: int
    """1 to 6 for a heading, 0 for a paragraph."""
    text: str


def media_type_of(name: str, given: str | None = None) -> MediaType:
    """The kind of a document, from the media type given (an upload's content type) or else the
    name's ending; plain text when neither says."""
    if given:
        base = given.split(";", 1)[0].strip().lower()
        aliases: dict[str, MediaType] = {
            "text/markdown": "text/markdown",
            "text/x-markdown": "text/markdown",
            "text/html": "text/html",
            "application/xhtml+xml": "text/html",
            "application/pdf": "application/pdf",
            "text/plain": "text/plain",
        }
        # Browsers send text/plain (or octet-stream) for a .md file: the ending knows better.
        if base in aliases and (
            base != "text/plain" or PurePath(name).suffix.lower() not in _BY_SUFFIX
        ):
            return aliases[base]
    return _BY_SUFFIX.get(PurePath(name).suffix.lower(), "text/plain")


def extract(name: str, content: bytes, media_type: MediaType) -> list[Block]:
    """The blocks of the document; raises `UnreadableDocument` naming `name`."""
    if media_type == "application/pdf":
        blocks = _pdf(name, content)
    else:
        text = _decode(name, content)
        if media_type == "text/markdown":
            blocks = _markdown(text)
        elif media_type == "text/html":
            blocks = _html(text)
        else:
            blocks = _paragraphs(text)
    if not any(block.level == 0 for block in blocks):
        raise UnreadableDocument(name, "no text found in it")
    return blocks


# --- the formats ------------------------------------------------------------------------------


def _decode(name: str, content: bytes) -> str:
    if b"\x00" in content:
        raise UnreadableDocument(name, "looks like a binary file, not text")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(
            name, f"is not UTF-8 text (byte {exc.start}); save it as UTF-8 and add it again"
        ) from None


_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _markdown(text: str) -> list[Block]:
    """ATX (`# Title`) and setext (underlined) headings; fenced code kept as text."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    fence: str | None = None

    def flush() -> None:
        joined = "\n".join(paragraph).strip()
        if joined:
            blocks.append(Block(0, joined))
        paragraph.clear()

    for line in text.splitlines():
        fenced = _FENCE.match(line)
        if fence is not None:
            paragraph.append(line)
            if fenced and fenced.group(1) == fence:
                fence = None
            continue
        if fenced:
            fence = fenced.group(1)
            paragraph.append(line)
            continue
        heading = _ATX.match(line)
        if heading:
            flush()
            title = (heading.group(2) or "").strip()
            if title:
                blocks.append(Block(len(heading.group(1)), title))
            continue
        underline = _SETEXT.match(line)
        if underline and len(paragraph) == 1 and paragraph[0].strip():
            title = paragraph.pop().strip()
            blocks.append(Block(1 if underline.group(1)[0] == "=" else 2, title))
            continue
        if not line.strip():
            flush()
        else:
            paragraph.append(line)
    flush()
    return blocks


def _paragraphs(text: str) -> list[Block]:
    return [Block(0, part.strip()) for part in re.split(r"\n\s*\n", text) if part.strip()]


_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BREAKS = {
    "p", "div", "li", "tr", "br", "section", "article", "blockquote", "pre", "dd", "dt",
    "table", "ul", "ol", "dl", "header", "footer", "main", "aside", "nav", "figure",
}  # fmt: skip
_SKIPPED = {"script", "style", "template", "noscript", "head", "svg"}


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._words: list[str] = []
        self._heading: int | None = None
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping += 1
        elif tag in _HEADINGS:
            self._flush()
            self._heading = _HEADINGS[tag]
        elif tag in _BREAKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _HEADINGS or tag in _BREAKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._words.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    def _flush(self) -> None:
        text = " ".join("".join(self._words).split())
        self._words.clear()
        if text:
            level = self._heading or 0
            if level == 0 and self.blocks and self.blocks[-1].level == 0 and len(text) < 80:
                # A line of a list or a table row: keep it with the paragraph before.
                self.blocks[-1] = Block(0, f"{self.blocks[-1].text}\n{text}")
            else:
                self.blocks.append(Block(level, text))
        self._heading = None


def _html(text: str) -> list[Block]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    return parser.blocks


def _pdf(name: str, content: bytes) -> list[Block]:
    from pypdf import PdfReader  # lazily: only a PDF pays for it
    from pypdf.errors import PdfReadError

    # pypdf logs what it repairs as warnings; a PDF it cannot read is our error, said once.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted:
            raise UnreadableDocument(name, "is an encrypted PDF; add a copy without a password")
        # A NUL cannot be stored in PostgreSQL text; some PDFs' text has one.
        pages = [(page.extract_text() or "").replace("\x00", "") for page in reader.pages]
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableDocument(name, f"is not a readable PDF ({exc})") from None
    blocks: list[Block] = []
    for number, page in enumerate(pages, start=1):
        paragraphs = _paragraphs(page)
        if paragraphs:
            if len(pages) > 1:
                blocks.append(Block(1, f"Page {number}"))
            blocks.extend(paragraphs)
    if not blocks:
        raise UnreadableDocument(
            name,
            "has no text layer (a scan or images only); run it through OCR and add the result",
        )
    return blocks
