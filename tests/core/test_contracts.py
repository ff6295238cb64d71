"""Reading contracts files: the rules come out as written, and every mistake is reported with
its file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from opsloop.core.contracts import Contract, parse_contracts
from opsloop.core.errors import PlaybookInvalid

ORDERS = """\
contracts:
  order.completed:
    description: A paid order
    fields:                       # payload fields
      order_id: {type: string, required: true}
      amount: {type: money, currency: currency, required: true}
      currency: {type: currency, required: true}
      email: email
      status: {type: string, allowed: [paid, refunded]}
      items: {type: integer, min: 1}
    traits:
      name: name
    additional: forbid

  # refunds come from Stripe
  order.refunded: {fields: {amount: {type: money, currency: cur}, cur: currency}}
"""


def problems(text: str, file: str = "shop.yaml") -> list[str]:
    with pytest.raises(PlaybookInvalid) as caught:
        parse_contracts(text, file)
    return [str(problem) for problem in caught.value.problems]


def test_a_file_holds_several_contracts_with_their_rules() -> None:
    completed, refunded = parse_contracts(ORDERS, "shop.yaml")
    assert completed.event_type == "order.completed"
    assert completed.description == "A paid order"
    assert completed.additional == "forbid"
    assert completed.fields["amount"].type == "money"
    assert completed.fields["amount"].currency == "currency"
    assert completed.fields["amount"].required
    assert completed.fields["email"].type == "email"  # `email: email` is a bare type
    assert completed.fields["status"].allowed == ("paid", "refunded")
    assert completed.fields["items"].min == 1
    assert completed.traits["name"].type == "name"
    assert refunded.fields["amount"].currency == "cur"
    assert refunded.additional == "allow"


def test_each_contract_keeps_its_own_lines_as_a_file_that_reads_back_the_same() -> None:
    completed, refunded = parse_contracts(ORDERS, "shop.yaml")
    assert completed.source.startswith("contracts:\n  order.completed:\n    description: A paid")
    assert "# payload fields" in completed.source  # comments are kept
    assert "# refunds" not in completed.source  # the comment above the next one is not
    assert "order.refunded" not in completed.source
    for contract in (completed, refunded):
        (again,) = parse_contracts(contract.source, "again.yaml")
        assert again.same_as(contract)


def test_a_contract_survives_storage_as_json() -> None:
    completed, _ = parse_contracts(ORDERS, "shop.yaml")
    stored = yaml.safe_load(yaml.safe_dump(completed.spec()))
    assert Contract.from_spec("order.completed", stored).same_as(completed)
    assert "required" not in completed.spec()["fields"]["email"]  # defaults are left out


def test_unknown_types_and_options_are_reported_at_their_line_with_a_suggestion() -> None:
    text = """\
contracts:
  order.completed:
    fields:
      amount: {type: mony, currency: currency}
      currency: {type: currency, requried: true}
    additionl: forbid
"""
    assert problems(text) == [
        "shop.yaml:4: contracts.order.completed.fields.amount.type: unknown type 'mony'; did "
        "you mean 'money'? (types: string, name, email, phone, integer, number, boolean, money, "
        "currency, timestamp, url, object, list)",
        "shop.yaml:5: contracts.order.completed.fields.currency.requried: unknown key "
        "'requried'; did you mean 'required'? (keys: type, required, nullable, allowed, min, "
        "max, pattern, currency, description)",
        "shop.yaml:6: contracts.order.completed.additionl: unknown key 'additionl'; did you "
        "mean 'additional'? (keys: description, fields, traits, additional)",
    ]


def test_options_that_do_not_fit_the_type_are_reported_all_at_once() -> None:
    text = """\
contracts:
  order.completed:
    fields:
      price: {type: money}
      total: {type: money, currency: curency}
      currency: {type: currency, allowed: [eur]}
      email: {type: email, min: 3}
      count: {type: integer, pattern: "[0-9]+", allowed: [1, 2.5]}
      code: {type: string, pattern: "[A-Z"}
      size: {type: number, min: 5, max: 1}
      note: {type: string, currency: currency}
"""
    found = problems(text)
    assert found == [
        "shop.yaml:4: contracts.order.completed.fields.price: a money field names the field "
        "holding its currency: currency: NAME",
        "shop.yaml:5: contracts.order.completed.fields.total.currency: no field named "
        "'curency' here; did you mean 'currency'?",
        "shop.yaml:6: contracts.order.completed.fields.currency.allowed[0]: 'eur' is not an "
        "ISO 4217 currency code in capitals, such as EUR",
        "shop.yaml:7: contracts.order.completed.fields.email.min: `min` bounds integer, number "
        "and money values, and the length of string, name and list",
        "shop.yaml:8: contracts.order.completed.fields.count.pattern: `pattern` is for text; "
        "integer values are not text",
        "shop.yaml:8: contracts.order.completed.fields.count.allowed[1]: 2.5 is not a whole number",
        found[6],
        "shop.yaml:10: contracts.order.completed.fields.size.min: min (5) is above max (1)",
        "shop.yaml:11: contracts.order.completed.fields.note.currency: `currency` is for money "
        "fields",
    ]
    assert found[6].startswith(
        "shop.yaml:9: contracts.order.completed.fields.code.pattern: not a regular expression:"
    )


def test_a_money_field_needs_a_currency_field() -> None:
    text = """\
contracts:
  order.completed:
    fields:
      amount: {type: money, currency: order_id}
      order_id: string
"""
    assert problems(text) == [
        "shop.yaml:4: contracts.order.completed.fields.amount.currency: 'order_id' must have "
        "type: currency"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order.completed: {}\n", "shop.yaml:1: a contracts file starts with `contracts:`"),
        ("contracts: []\n", "shop.yaml:1: contracts: list contracts by event type"),
        (
            "contracts:\n  Not a type!: {}\n",
            "shop.yaml:2: contracts.Not a type!: an event type looks like `order.completed`",
        ),
        (
            "contracts:\n  order.completed:\n    fields: [email]\n",
            "shop.yaml:3: contracts.order.completed.fields: a mapping of field name",
        ),
        (
            "contracts:\n  order.completed: {}\ncontract: {}\n",
            "shop.yaml:3: contract: unknown key; did you mean 'contracts'?",
        ),
        (
            "contracts:\n  order.completed:\n    fields:\n      email: {type: email\n",
            "shop.yaml:5: YAML syntax:",
        ),
        (
            "contracts:\n  order.completed:\n    fields:\n      email: 3\n",
            "shop.yaml:4: contracts.order.completed.fields.email: a rule is a mapping",
        ),
    ],
)
def test_a_malformed_file_names_the_line(text: str, expected: str) -> None:
    assert problems(text)[0].startswith(expected)


def test_the_example_in_the_docs_is_valid_and_its_mistakes_read_as_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "sources.md").read_text()
    section = text.split("## Contracts", 1)[1].split("\n## ", 1)[0]
    example = re.search(r"```yaml\n(contracts:\n.*?)```", section, re.S)
    assert example, "docs/sources.md#contracts needs a ```yaml example"
    parsed = parse_contracts(example.group(1), "shop-contracts.yaml")
    assert [c.event_type for c in parsed] == ["order.completed", "order.refunded"]
    broken = example.group(1).replace("{type: email,", "{type: emial,")
    broken = broken.replace("{type: string, allowed:", "{type: string, requried: true, allowed:")
    documented = re.search(r"```text\n(shop-contracts.yaml:.*?)```", section, re.S)
    assert documented
    for found, shown in zip(
        problems(broken, "shop-contracts.yaml"), documented.group(1).splitlines(), strict=True
    ):
        assert found.startswith(shown.removesuffix(" ...)").rstrip(","))
