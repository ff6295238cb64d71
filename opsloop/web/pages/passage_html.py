"""Document passages as HTML, for the document page and for answers drawn from documents.

A passage of a Markdown document is rendered by markdown-it (CommonMark, with tables and
strikethrough), safely, since a document may be hostile:
- raw HTML is off: `<script>` is shown as text, never passed through;
- a link goes only to `http`, `https`, `mailto` or a relative address; any other (`javascript:`,
  `data:`, `vbscript:`…) stays text, and links carry `rel="nofollow noopener noreferrer"`;
- images are off: `![alt](url)` loads nothing.
Only markdown-it's output, which escapes all the text it holds, becomes `Markup`. Passages of
plain-text, HTML and PDF documents stay escaped text. The JSON API returns the raw text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from functools import cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape

MARKDOWN = "text/markdown"
SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_MARKER = re.compile(r"\[(\d{1,3})\]")


def safe_link(url: str) -> bool:
    """Whether a link may go to `url` (as markdown-it normalized it): http, https, mailto or
    relative. Control characters and spaces are percent-encoded by then, so `java\\tscript:`
    has no scheme and is a relative path."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return ":" not in url.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return scheme.group(1).lower() in SCHEMES


def _link_open(
    renderer: RendererHTML,
    tokens: Sequence[Token],
    index: int,
    options: OptionsDict,
    env: EnvType,
) -> str:
    tokens[index].attrSet("rel", "nofollow noopener noreferrer")
    return renderer.renderToken(tokens, index, options, env)


@cache
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"]).disable("image")
    md.validateLink = safe_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    return md


def passage_html(text: str, media_type: str) -> Markup:
    """A whole passage: Markdown rendered, any other kind as escaped paragraphs."""
    if media_type == MARKDOWN:
        return Markup(_markdown().render(text))  # markdown-it escaped it (html off)
    return Markup("").join(
        Markup("<p>{}</p>\n").format(part.strip()) for part in text.split("\n\n") if part.strip()
    )


def inline_html(text: str) -> Markup:
    """One line of Markdown (links, emphasis, code; no blocks), rendered as safely."""
    return Markup(_markdown().renderInline(text))  # markdown-it escaped it (html off)


def answer_lines(answer: Mapping[str, Any], markdown: Collection[int]) -> list[Markup]:
    """The lines of an answer from documents: a line whose every cited passage ([n]) is of a
    Markdown document (its id in `markdown`) rendered as inline Markdown, any other escaped."""
    cited = answer["citations"]
    lines = []
    for line in str(answer["text"]).split("\n"):
        numbers = [int(n) for n in _MARKER.findall(line)]
        documents = [cited[n - 1]["document_id"] for n in numbers if 1 <= n <= len(cited)]
        if documents and all(d in markdown for d in documents):
            lines.append(inline_html(line))
        else:
            lines.append(escape(line))
    return lines
