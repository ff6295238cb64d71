"""`opsloop docs ...`: add, sync, list, show, remove, search and ask the business's documents
(docs/documents.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from opsloop.cli import rendering
from opsloop.cli.common import JustJson, actor, console, err, id_argument, service
from opsloop.core.errors import OpsLoopError

docs_app = typer.Typer(
    help="Documents (FAQ, policies, price lists) that answers are drawn from, with citations.",
    no_args_is_help=True,
)

SUFFIXES = (".md", ".markdown", ".mdown", ".html", ".htm", ".pdf", ".txt", ".text")
"""As opsloop/knowledge/extraction.py reads them (the CLI may not import the layer)."""

Collection = Annotated[
    str,
    typer.Option(
        "--collection",
        "-c",
        help="The collection (letters, digits, - _ .); searches and answers can keep to one.",
        envvar="OPSLOOP_DOCS_COLLECTION",
    ),
]
CollectionFilter = Annotated[
    str | None,
    typer.Option(
        "--collection", "-c", help="Only this collection.", envvar="OPSLOOP_DOCS_COLLECTION"
    ),
]
DocumentId = Annotated[int, id_argument("The document's id (`opsloop docs list`).")]
Question = Annotated[str, typer.Argument(help="The question, in quotes.")]


@docs_app.command("add")
def docs_add(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files (Markdown, HTML, PDF, text) or folders (read recursively).", exists=True
        ),
    ],
    collection: Collection = "default",
) -> None:
    """Add documents; a name already in the collection gets a new version, and the same bytes
    again change nothing. A file that cannot be read is named with the reason; the others are
    added. Exit code 1 if any failed."""
    files = _files(paths)
    if not files:
        err.print("[red]Error:[/red] no Markdown, HTML, PDF or text files there")
        raise typer.Exit(1)
    failed = 0
    with service() as ops:
        for path, name in files:
            try:
                added = ops.ask.add_document(
                    name=name,
                    content=path.read_bytes(),
                    collection=collection,
                    source="cli",
                    actor=actor(),
                )
            except (OpsLoopError, OSError) as exc:  # named with its reason; the others go on
                failed += 1
                err.print(f"[red]Error:[/red] {escape(str(exc))}")
                continue
            console.print(
                f"{escape(added['collection'])}/{escape(added['name'])}: {added['status']}, "
                f"version {added['version']}, {added['passages']} "
                f"passage{'' if added['passages'] == 1 else 's'} (id {added['id']})"
            )
    if failed:
        raise typer.Exit(1)


@docs_app.command("sync")
def docs_sync(
    folder: Annotated[
        Path, typer.Argument(help="The folder to mirror.", exists=True, file_okay=False)
    ],
    collection: Collection = "default",
) -> None:
    """Make the collection hold what the folder holds: add new and changed files, remove
    documents whose file is gone. Run it from cron, or after your own sync script has fetched
    pages (URLs) into the folder. Exit code 1 if a file could not be read."""
    with service() as ops:
        report = ops.ask.sync_folder(folder.resolve(), collection=collection, actor=actor())
    for key in ("added", "updated", "removed"):
        for name in report[key]:
            console.print(f"{key}: {escape(name)}")
    console.print(
        f"{escape(report['collection'])}: {len(report['added'])} added, "
        f"{len(report['updated'])} updated, {len(report['unchanged'])} unchanged, "
        f"{len(report['removed'])} removed, {len(report['failed'])} failed"
    )
    for reason in report["failed"]:
        err.print(f"[red]Error:[/red] {escape(reason)}")
    if report["failed"]:
        raise typer.Exit(1)


@docs_app.command("list")
def docs_list(collection: CollectionFilter = None, json_out: JustJson = False) -> None:
    """The documents, by collection and name."""
    with service() as ops:
        rows = ops.ask.list_documents(collection=collection)
    if json_out:
        rendering.print_json(rows)
        return
    if not rows:
        console.print("No documents yet: add some with `opsloop docs add FILE...`.")
        return
    table = Table("id", "collection", "name", "version", "kind", "passages", "updated")
    for row in rows:
        table.add_row(
            str(row["id"]),
            escape(row["collection"]),
            escape(row["name"]),
            str(row["version"]),
            row["media_type"],
            str(row["passages"]),
            f"{rendering.when(row['updated_at'])} by {escape(row['updated_by'])}",
        )
    console.print(table)


@docs_app.command("show")
def docs_show(document_id: DocumentId, json_out: JustJson = False) -> None:
    """One document and its passages, each under its heading path."""
    with service() as ops:
        found = ops.ask.get_document(document_id)
    if json_out:
        rendering.print_json(found)
        return
    console.print(
        f"[bold]{escape(found['name'])}[/bold] ({escape(found['collection'])}, version "
        f"{found['version']}, {found['media_type']}, {found['size']:,} bytes)"
    )
    for passage in found["passage_list"]:
        heading = f" {escape(passage['heading'])}" if passage["heading"] else ""
        console.print(f"\n[bold]#p{passage['ordinal']}[/bold]{heading}")
        console.print(escape(passage["text"]), soft_wrap=True)


@docs_app.command("remove")
def docs_remove(document_id: DocumentId) -> None:
    """Remove a document and all its passages."""
    with service() as ops:
        ops.ask.delete_document(document_id, actor=actor())
    console.print(f"Removed document {document_id}.")


@docs_app.command("search")
def docs_search(
    query: Question,
    collection: CollectionFilter = None,
    limit: Annotated[int, typer.Option(help="How many passages.", min=1, max=50)] = 5,
    json_out: JustJson = False,
) -> None:
    """The passages that best match the words, best first."""
    with service() as ops:
        hits = ops.ask.search_passages(query, collection=collection, limit=limit)
    if json_out:
        rendering.print_json(hits)
        return
    if not hits:
        console.print("No passage matches.")
    for number, hit in enumerate(hits, start=1):
        _print_passage(number, hit)


@docs_app.command("answer")
def docs_answer(
    question: Question, collection: CollectionFilter = None, json_out: JustJson = False
) -> None:
    """An answer whose every sentence cites a passage, or "The documents don't say." With a
    language model configured it writes the answer; without one, the best passages."""
    with service() as ops:
        answer = ops.ask.answer_question(question, collection=collection)
    if json_out:
        rendering.print_json(answer)
        return
    console.print(escape(answer["text"]), soft_wrap=True)
    if answer["abstained"]:
        console.print(f"[dim]({escape(answer['reason'])})[/dim]")
        return
    console.print()
    for number, hit in enumerate(answer["citations"], start=1):
        _print_passage(number, hit, full=False)
    console.print(f"[dim]({escape(answer['reason'])})[/dim]")


def _print_passage(number: int, hit: Any, *, full: bool = True) -> None:
    where = hit["document_name"] + (f" › {hit['heading']}" if hit["heading"] else "")
    console.print(
        f"[bold][{number}][/bold] {escape(where)}  [dim]document {hit['document_id']}, "
        f"#p{hit['ordinal']}[/dim]"
    )
    if full:
        console.print(escape(hit["text"]), soft_wrap=True)
        console.print()


def _files(paths: list[Path]) -> list[tuple[Path, str]]:
    """(path, document name) of each file given and each document file under each folder; a
    file in a folder is named by its path inside that folder."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            for inner in sorted(path.rglob("*")):
                relative = inner.relative_to(path)
                if (
                    inner.is_file()
                    and inner.suffix.lower() in SUFFIXES
                    and not any(part.startswith(".") for part in relative.parts)
                ):
                    found.append((inner, relative.as_posix()))
        else:
            found.append((path, path.name))
    return found
