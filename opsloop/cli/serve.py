"""`opsloop serve`, `worker` and `migrate`: run OpsLoop, and bring its database schema up to date.

`serve` is the one command that imports the web layer (opsloop/web/app.py), inside the function,
since launching the server is what it is for; every other command goes through the service."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from opsloop.cli.common import console, fail, settings
from opsloop.core.errors import OpsLoopError
from opsloop.gc_tuning import tune_for_serving
from opsloop.service import QUEUE_NAMES

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
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Also run background jobs in this process (off: web only, beside "
            "`opsloop worker` processes).",
        ),
    ] = True,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            min=1,
            max=64,
            help="Web processes sharing the port (each a uvicorn worker; PostgreSQL, or SQLite "
            "for reads; docs/scaling.md).",
        ),
    ] = 1,
) -> None:
    """Run the server: JSON API, web app, ingest endpoints and (unless --no-worker) the
    background workers."""
    import uvicorn

    overrides = {"host": host, "port": port, "serve_workers": False if not worker else None}
    config = settings(**{k: v for k, v in overrides.items() if v is not None})
    label = "" if worker else ", web only"
    console.print(
        f"OpsLoop on http://{config.host}:{config.port}  (database: {_db_label(config)}, "
        f"{processes} process{'es' if processes > 1 else ''}{label})"
    )
    if processes > 1:
        # Each process builds its app from the environment (opsloop.web.app:app_from_environment).
        if not worker:
            os.environ["OPSLOOP_SERVE_WORKERS"] = "false"
        uvicorn.run(
            "opsloop.web.app:app_from_environment",
            factory=True,
            host=config.host,
            port=config.port,
            workers=processes,
            log_level="warning",
            access_log=False,
        )
        return

    # The one import of the web layer, an allowed exception: this command launches it.
    from opsloop.web.app import create_app

    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
    )


@commands.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Jobs run at once by this process.",
            show_default="OPSLOOP_WORKER_THREADS, 4",
        ),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(
            help="Run only these queues, comma-separated: "
            f"{', '.join(QUEUE_NAMES)} (PostgreSQL). Default: all.",
        ),
    ] = None,
) -> None:
    """Run background jobs (deliveries, language-model decisions, syncs, training, retention)
    without the HTTP server. On PostgreSQL any number of these share the work on any number
    of machines; SIGTERM or Ctrl-C lets running jobs finish first."""
    import signal
    import threading

    from opsloop.service import OpsLoop

    known = set(QUEUE_NAMES)
    wanted = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    if wanted is not None and (unknown := sorted(set(wanted) - known)):
        raise typer.BadParameter(
            f"unknown queue {', '.join(unknown)}; the queues are {', '.join(sorted(known))}",
            param_hint="--queues",
        )
    extra = {"worker_threads": concurrency} if concurrency else {}
    config = settings(**extra)
    stop = threading.Event()
    # SIGTERM and Ctrl-C: stop fetching, let the running jobs finish.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    ops = OpsLoop(config, queues=wanted)
    try:
        ops.prepare()
        tune_for_serving()
        if wanted is not None and config.resolved_database_url.startswith("sqlite"):
            console.print("On SQLite every process runs every queue: --queues is ignored.")
        console.print(
            f"Worker running on {_db_label(config)} ({config.worker_threads} at once, queues: "
            f"{', '.join(wanted) if wanted else 'all'}). Ctrl-C to stop."
        )
        ops.work(stop)
    except OpsLoopError as exc:
        fail(exc)
    finally:
        ops.close()


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
