"""Blocks into passages along the headings: each passage holds the text under one heading, with
the path of headings above it (`Returns`, then `Damaged goods`, joined by `SEPARATOR`), so a hit says where it came from.

A long section is cut into passages of at most `MAX_WORDS` words, on paragraph boundaries
where it can be; each cut repeats the last `OVERLAP_WORDS` words of the passage before, so a
sentence that straddles a cut is whole in one of them.
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
        kept = [word for word in current if word != _BREAK]
        return kept[len(kept) - overlap :] if overlap else []

    for paragraph in paragraphs:
        words = paragraph.split()
        if current and _count(current) + len(words) > max_words:
            current = cut()
        if current:
            current = [*current, _BREAK]
        # A paragraph longer than a piece is cut into windows that overlap.
        while _count(current) + len(words) > max_words:
            room = max_words - _count(current)
            current = current + words[:room]
            words = words[room:]
            current = cut()
        current = current + words
    if [word for word in current if word != _BREAK]:
        pieces.append(current)
    return [_join(words) for words in pieces]


_BREAK = "\n\n"


def _count(words: list[str]) -> int:
    return sum(1 for word in words if word != _BREAK)


def _join(words: list[str]) -> str:
    return " ".join(words).replace(" \n\n ", "\n\n").strip()
