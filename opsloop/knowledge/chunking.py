"""Blocks into passages along the headings: each passage holds the text under one heading, with
the path of headings above it (`Returns`, then `Damaged goods`, joined by `SEPARATOR`), so a hit says where it came from.

A long section is cut into passages of at most `MAX_WORDS` words, on paragraph boundaries
where it can be; each cut repeats the last `OVERLAP_WORDS` words of the passage before, so a
sentence that straddles a cut is whole in one of them.

A paragraph's line breaks are kept (a Markdown list, table or code block stays one item a
line, so it can be shown as one); the words repeated at a cut are joined by spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

from opsloop.knowledge.extraction import Block

MAX_WORDS = 180
OVERLAP_WORDS = 30
SEPARATOR = " › "


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    """Its place in the document, from 1 (the `#p3` of a link)."""
    heading: str
    """The heading path, joined with ` › `; empty before the first heading."""
    text: str


def chunk(
    blocks: list[Block], *, max_words: int = MAX_WORDS, overlap: int = OVERLAP_WORDS
) -> list[Chunk]:
    if not 0 <= overlap < max_words:
        raise ValueError("overlap must be smaller than max_words")
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []
    section: list[str] = []

    def flush() -> None:
        heading = SEPARATOR.join(title for _, title in path)
        for text in _pieces(section, max_words, overlap):
            chunks.append(Chunk(len(chunks) + 1, heading, text))
        section.clear()

    for block in blocks:
        if block.level:
            flush()
            while path and path[-1][0] >= block.level:
                path.pop()
            path.append((block.level, block.text))
        else:
            section.append(block.text)
    flush()
    return chunks


def _pieces(paragraphs: list[str], max_words: int, overlap: int) -> list[str]:
    """The section's paragraphs packed into pieces of at most `max_words` words."""
    pieces: list[list[str]] = []
    current: list[str] = []

    def cut() -> list[str]:
        pieces.append(current)
        kept = [word for word in current if word not in _MARKS]
        return kept[len(kept) - overlap :] if overlap else []

    for paragraph in paragraphs:
        words = _words(paragraph)
        if current and _count(current) + _count(words) > max_words:
            current = cut()
        if current:
            current = [*current, _BREAK]
        # A paragraph longer than a piece is cut into windows that overlap.
        while _count(current) + _count(words) > max_words:
            room = _after(words, max_words - _count(current))
            current = current + words[:room]
            words = words[room:]
            current = cut()
        current = current + words
    if [word for word in current if word not in _MARKS]:
        pieces.append(current)
    return [_join(words) for words in pieces]


_BREAK = "\n\n"
_LINE = "\n"
_MARKS = (_BREAK, _LINE)


def _words(paragraph: str) -> list[str]:
    """The paragraph's words, with `_LINE` between its (non-blank) lines."""
    words: list[str] = []
    for line in paragraph.splitlines():
        if line.split():
            words += [*([_LINE] if words else []), *line.split()]
    return words


def _count(words: list[str]) -> int:
    return sum(1 for word in words if word not in _MARKS)


def _after(words: list[str], count: int) -> int:
    """How many items of `words` hold its first `count` words."""
    seen = 0
    for index, word in enumerate(words):
        if word not in _MARKS:
            if seen == count:
                return index
            seen += 1
    return len(words)


def _join(words: list[str]) -> str:
    text = " ".join(words).replace(" \n\n ", "\n\n").replace(" \n ", "\n")
    return text.strip(" \n")
