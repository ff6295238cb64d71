"""Jinja2 templates in actions (email subjects and bodies, chat text, webhook bodies).

Rendered in a sandbox: a playbook author can read the decision's context but cannot reach
Python internals. A missing value renders as empty text, so `{{ entity.name or 'there' }}`
reads naturally.

Inside JSON values (webhook bodies, trait updates) a string that is exactly one `{{ ... }}`
keeps the value's type: `amount: "{{ event.payload.total }}"` sends the number 38.5, not the
text "38.5"; a missing value becomes null.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, TemplateSyntaxError, Undefined
from jinja2.sandbox import SandboxedEnvironment

from opsloop.core.yaml_source import Path

_text = SandboxedEnvironment(
    undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=True
)
_html = SandboxedEnvironment(
    undefined=ChainableUndefined, autoescape=True, keep_trailing_newline=True
)


_SINGLE = re.compile(r"^\s*\{\{(?P<expression>(?:(?!\}\}|\{\{|\{%).)*)\}\}\s*$", re.S)


class RenderError(Exception):
    """A template failed while rendering (a filter on a missing value, a bad call …)."""


@lru_cache(maxsize=2048)
def _template(source: str, *, html: bool) -> Template:
    return (_html if html else _text).from_string(source)


@lru_cache(maxsize=2048)
def _expression(source: str) -> Callable[..., Any]:
    return _text.compile_expression(source, undefined_to_none=True)


def render(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    if "{" not in source:
        return source
    try:
        return _template(source, html=html).render(context)
    except (TemplateError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
        raise RenderError(f"{type(exc).__name__}: {exc}") from None


def render_value(value: Any, context: dict[str, Any]) -> Any:
    """Render every string inside a JSON-like value; other values pass through."""
    if isinstance(value, str):
        single = _SINGLE.match(value)
        if single is None:
            return render(value, context)
        try:
            result = _expression(single.group("expression"))(**context)
        except (TemplateError, TypeError, ValueError, AttributeError, ArithmeticError) as exc:
            raise RenderError(f"{type(exc).__name__}: {exc}") from None
        return None if isinstance(result, Undefined) else result
    if isinstance(value, dict):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(item, context) for item in value]
    return value


def template_problems(templates: Iterator[tuple[Path, str]]) -> Iterator[tuple[Path, int, str]]:
    """(path, line offset inside the template, message) for each template that fails to parse."""
    for path, source in templates:
        try:
            _text.parse(source)
        except TemplateSyntaxError as exc:
            yield path, max((exc.lineno or 1) - 1, 0), f"template: {exc.message}"
