"""Hostile YAML is refused with the file and line before anything is built: anchors and
aliases (the "billion laughs" bomb), merge keys, deep nesting, control characters, and values
PyYAML cannot build. Files without them read as before."""

from __future__ import annotations

import tracemalloc

import pytest

from opsloop.core.contracts import parse_contracts
from opsloop.core.errors import PlaybookInvalid, PlaybookProblem
from opsloop.core.playbooks import parse_playbook
from opsloop.core.sources import parse_source
from opsloop.core.yaml_source import (
    ALIASES_REFUSED,
    DEPTH_REFUSED,
    MAX_DEPTH,
    MAX_NODES,
    MERGE_REFUSED,
    NODES_REFUSED,
    parse_yaml,
)
from opsloop.perception.mapping import Mapping, builtin_names
from tests.hostile_yaml import bomb, refuse_before_sending_a_bomb


def refusal(text: str, file: str = "acme.yaml") -> PlaybookProblem:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_yaml(text, file)
    [problem] = caught.value.problems
    assert problem.file == file
    return problem


def test_a_nine_level_billion_laughs_is_refused_at_its_first_anchor_for_almost_nothing() -> None:
    refuse_before_sending_a_bomb()
    tracemalloc.start()
    try:
        problem = refusal(bomb(9))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (problem.line, problem.message) == (1, ALIASES_REFUSED)
    # Followed, the aliases stand for 387 million strings (about 20 GB of Python objects).
    assert peak < 1_000_000, f"refusing the bomb allocated {peak} bytes"


def test_an_anchor_is_refused_at_its_own_line_even_when_never_used() -> None:
    text = """\
name: acme
defaults: &defaults
  within: 7d
"""
    assert refusal(text).line == 2
    assert refusal(text).message == "YAML aliases and anchors are not allowed: write the value out"


def test_an_alias_is_refused_at_its_line() -> None:
    text = "name: acme\nsubject: lead\nmode: *mode\n"
    assert (refusal(text).line, refusal(text).message) == (3, ALIASES_REFUSED)


def test_a_merge_key_is_refused_at_its_line() -> None:
    text = """\
name: acme
options:
  hot:
    <<: {label: Hot}
"""
    problem = refusal(text)
    assert (problem.line, problem.message) == (4, MERGE_REFUSED)
    assert "<<" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "code", "column"),
    [
        ("name: acme\nsubject: lead\x07\n", 2, "U+0007", 14),
        ("name: ac\x00me\n", 1, "U+0000", 9),
        ("a: 1\nb: 2\nc: \x1b[31mred\n", 3, "U+001B", 4),
    ],
)
def test_a_control_character_is_refused_with_its_line_and_column(
    text: str, line: int, code: str, column: int
) -> None:
    problem = refusal(text)
    assert problem.line == line
    assert f"control character {code} (column {column}) is not allowed" in problem.message


def test_ten_thousand_nested_brackets_are_refused_at_the_first_line_too_deep() -> None:
    problem = refusal("[" * 10_000)
    assert (problem.line, problem.message) == (1, DEPTH_REFUSED)
    assert str(MAX_DEPTH) in problem.message


def test_deep_block_nesting_is_refused_at_the_line_where_it_goes_too_deep() -> None:
    text = "".join(f"{'  ' * level}k{level}:\n" for level in range(200)) + "  " * 200 + "x: 1\n"
    problem = refusal(text)
    # Line n opens mapping n; the mapping that is one too deep starts on the line below.
    assert (problem.line, problem.message) == (MAX_DEPTH + 1, DEPTH_REFUSED)


def test_nesting_up_to_the_limit_is_read() -> None:
    deepest = parse_yaml("[" * MAX_DEPTH + "x" + "]" * MAX_DEPTH, "acme.yaml").data
    for _ in range(MAX_DEPTH):
        assert isinstance(deepest, list)
        [deepest] = deepest
    assert deepest == "x"


def test_a_file_of_too_many_values_is_refused_at_the_line_that_passes_the_limit() -> None:
    # The list is one value and each item another: item n is on line n.
    problem = refusal("- a\n" * (MAX_NODES + 5_000))
    assert (problem.line, problem.message) == (MAX_NODES, NODES_REFUSED)
    assert len(parse_yaml("- a\n" * (MAX_NODES - 1), "acme.yaml").data) == MAX_NODES - 1


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("2026-02-30", "cannot read '2026-02-30' as a date or time: day is out of range for month"),
        ("!!bool maybe", "cannot read 'maybe' as true or false"),
        ("!!timestamp soon", "cannot read 'soon' as a date or time"),
        ("!!int many", "cannot read 'many' as a whole number"),
        ("1" * 5000, "as a whole number: Exceeds the limit (4300 digits)"),
    ],
)
def test_a_value_pyyaml_cannot_build_is_refused_with_its_line(value: str, said: str) -> None:
    problem = refusal(f"name: acme\nsince: {value}\n")
    assert problem.line == 2
    assert said in problem.message


def test_playbooks_sources_and_contracts_all_refuse_aliases_with_file_and_line() -> None:
    playbook = "name: acme\nsubject: &s lead\ntrigger: {events: lead.created}\n"
    with pytest.raises(PlaybookInvalid) as caught:
        parse_playbook(playbook, "acme.yaml")
    assert str(caught.value) == f"acme.yaml:2: {ALIASES_REFUSED}"

    source = "name: shop\nkind: webhook\nverify: none\nmapping: &m stripe\n"
    with pytest.raises(PlaybookInvalid) as caught:
        parse_source(source, "shop.yaml")
    assert str(caught.value) == f"shop.yaml:4: {ALIASES_REFUSED}"

    contracts = """\
contracts:
  order.paid:
    fields:
      amount: {type: money, currency: currency}
      currency: currency
    <<: {additional: forbid}
"""
    with pytest.raises(PlaybookInvalid) as caught:
        parse_contracts(contracts, "orders.yaml")
    assert str(caught.value) == f"orders.yaml:6: {MERGE_REFUSED}"


def test_a_plain_file_reads_with_its_lines_as_before() -> None:
    document = parse_yaml("name: acme\nlist:\n  - a\n  - {b: 1}\ntext: |\n  hi\n", "acme.yaml")
    assert document.data == {"name": "acme", "list": ["a", {"b": 1}], "text": "hi\n"}
    assert document.line_of(("list", 1, "b")) == 4
    assert document.content_line_of(("text",)) == 6
    # `*` and `&` inside quoted text, and `<<` as a quoted key, are plain text.
    quoted = parse_yaml("'<<': '&a *b'\nwhen: \"x * 2\"\n", "acme.yaml").data
    assert quoted == {"<<": "&a *b", "when": "x * 2"}


def test_every_built_in_mapping_still_loads() -> None:
    for name in builtin_names():
        assert Mapping.load(name, origin="test") is not None
