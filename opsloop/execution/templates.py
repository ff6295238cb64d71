"""Jinja2 templates in actions (email subjects and bodies, chat text, webhook bodies).

Rendered in a sandbox: a playbook author can read the decision's context but cannot reach
Python internals. A missing value renders as empty text, so `{{ entity.name or 'there' }}`
reads naturally.

Inside JSON values (webhook bodies, trait updates) a string that is exactly one `{{ ... }}`
keeps the value's type: `amount: "{{ event.payload.total }}"` sends the number 38.5, not the
text "38.5"; a missing value becomes null.

Jinja2 is imported by the first template rendered or checked, not with this module: it is 15-20
ms of start-up for a command that renders nothing (docs/performance.md#cli-start-up).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from opsloop.core.yaml_source import Path

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import SandboxedEnvironment


@cache
def _environment(*, html: bool) -> SandboxedEnvironment:
    from jinja2 import ChainableUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        undefined=ChainableUndefined, autoescape=html, keep_trailing_newline=True
    )


_SINGLE = re.compile(r"^\s*\{\{(?P<expression>(?:(?!\}\}|\{\{|\{%).)*)\}\}\s*$", re.S)


class RenderError(Exception):
    """A template failed while rendering (a filter on a missing value, a bad call …)."""


@lru_cache(maxsize=2048)
def _template(source: str, *, html: bool) -> Template:
    return _environment(html=html).from_string(source)


@lru_cache(maxsize=2048)
def _expression(source: str) -> Callable[..., Any]:
    return _environment(html=False).compile_expression(source, undefined_to_none=True)


def render(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    if "{" not in source:
        return source
    from jinja2 import TemplateError  # see the module's notes

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
        from jinja2 import TemplateError, Undefined  # see the module's notes

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
    from jinja2 import TemplateSyntaxError  # see the module's notes

    for path, source in templates:
        try:
            _environment(html=False).parse(source)
        except TemplateSyntaxError as exc:
            yield path, max((exc.lineno or 1) - 1, 0), f"template: {exc.message}"
