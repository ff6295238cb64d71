"""`opsloop docs` on SQLite and PostgreSQL, as a person uses it: add files and folders, list,
show, search, answer with citations, sync a folder, remove; an unreadable file is named."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import OpsFactory
from tests.knowledge.files import HOURS_HTML, POLICY_MD, pdf_bytes
from tests.test_cli_replay_and_cancel import cli_database, run

__all__ = ["cli_database"]


def test_documents_from_the_command_line(
    make_ops: OpsFactory, cli_database: str, tmp_path: Path
) -> None:
    folder = tmp_path / "handbook"
    (folder / "shop").mkdir(parents=True)
    (folder / "policy.md").write_text(POLICY_MD)
    (folder / "shop" / "hours.html").write_text(HOURS_HTML)
    single = tmp_path / "warranty.pdf"
    single.write_bytes(pdf_bytes(["Warranty", "Every kettle has a two year warranty."]))

    code, output = run("docs", "add", str(folder), str(single), "--collection", "handbook")
    assert code == 0, output
    assert "handbook/policy.md: created, version 1, 3 passages" in output
    assert "handbook/shop/hours.html: created" in output
    code, output = run("docs", "add", str(single), "-c", "handbook")
    assert "handbook/warranty.pdf: unchanged, version 1" in output
    code, output = run("docs", "add", str(single), "-c", "products")
    assert "products/warranty.pdf: created" in output

    code, output = run("docs", "list", "--json")
    listed = {d["name"]: d for d in json.loads(output)}
    assert set(listed) == {"policy.md", "shop/hours.html", "warranty.pdf"}
    code, output = run("docs", "list", "-c", "handbook", "--json")
    listed = {d["name"]: d for d in json.loads(output)}
    policy_id = listed["policy.md"]["id"]

    code, output = run("docs", "show", str(policy_id))
    assert code == 0
    assert "#p2 Returns › Damaged goods" in output

    code, output = run("docs", "search", "bank holidays")
    assert code == 0
    assert "[1] shop/hours.html › Opening hours › Bank holidays" in output

    code, output = run("docs", "answer", "Do you refund damaged items?")
    assert code == 0, output
    assert re.search(r"\[1\] policy.md › Returns › Damaged goods\s+document \d+, #p2", output)
    code, output = run("docs", "answer", "What is the capital of Mongolia?")
    assert code == 0
    assert "The documents don't say." in output

    (folder / "shop" / "hours.html").unlink()
    code, output = run("docs", "sync", str(folder), "--collection", "handbook")
    assert code == 0, output
    assert "removed: shop/hours.html" in output
    assert "removed: warranty.pdf" in output, "the collection mirrors the folder"
    assert "0 added, 0 updated, 1 unchanged, 2 removed, 0 failed" in output
    remaining = make_ops(cli_database).ask.list_documents()
    assert {(d["collection"], d["name"]) for d in remaining} == {
        ("handbook", "policy.md"),
        ("products", "warranty.pdf"),
    }

    code, output = run("docs", "remove", str(policy_id))
    assert code == 0
    assert f"Removed document {policy_id}." in output
    code, output = run("docs", "remove", str(policy_id))
    assert code == 1
    assert f"no document {policy_id}" in output


def test_an_unreadable_file_is_named_and_the_others_are_added(
    cli_database: str, tmp_path: Path
) -> None:
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(pdf_bytes([]))
    policy = tmp_path / "policy.md"
    policy.write_text(POLICY_MD)
    code, output = run("docs", "add", str(scan), str(policy))
    assert code == 1
    assert "scan.pdf: has no text layer" in output
    assert "default/policy.md: created" in output
