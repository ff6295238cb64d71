"""`opsloop serve`, `worker` and `migrate`: run OpsLoop, and bring its database schema up to date.

`serve` is the one command that imports the web layer (opsloop/web/app.py), inside the function,
since launching the server is what it is for; every other command goes through the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from opsloop.cli.common import console, service, settings
from opsloop.gc_tuning import tune_for_serving

if TYPE_CHECKING:
    from opsloop.settings import Settings

commands = typer.Typer()


@commands.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on.", envvar="OPSLOOP_HOST", show_default="127.0.0.1"),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on.", envvar="OPSLOOP_PORT", show_default="8000"),
    ] = None,
) -> None:
    """Run the server: JSON API, ingest endpoints and the background workers."""
    import uvicorn

    # The one import of the web layer, an allowed exception: this command launches it.
    from opsloop.web.app import create_app

    config = settings(**{k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    console.print(f"OpsLoop on http://{config.host}:{config.port}  (database: {_db_label(config)})")
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
    )


@commands.command()
def worker() -> None:
    """Run background work (decisions, deliveries) without the HTTP server."""
    import signal
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with service() as ops:
        ops.prepare()
        ops.start()
        tune_for_serving()
        console.print(f"Worker running on {_db_label(ops.settings)}. Ctrl-C to stop.")
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass


@commands.command()
def migrate() -> None:
    """Create or upgrade the database schema (serve and demo do this on start)."""
    config = settings(auto_migrate=False)
    from opsloop.service import migrate_database

    migrate_database(config)
    console.print(f"Database is up to date ({_db_label(config)}).")


def _db_label(config: Settings) -> str:
    url = config.resolved_database_url
    return url.split("@")[-1] if "@" in url else url
