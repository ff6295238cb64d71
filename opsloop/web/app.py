"""`create_app(settings)`: the FastAPI application around one OpsLoop service."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from opsloop import __version__
from opsloop.gc_tuning import tune_for_serving
from opsloop.service import OpsLoop
from opsloop.settings import Settings
from opsloop.web import (
    account_pages,
    account_routes,
    action_pages,
    auth,
    backtest_routes,
    contract_routes,
    dashboard_pages,
    decision_routes,
    errors,
    inbox_pages,
    ingest_routes,
    model_routes,
    openapi_errors,
    playbook_pages,
    playbook_routes,
    settings_pages,
    source_pages,
    source_routes,
    sync_routes,
    system_routes,
    tracking_routes,
    ui,
)
from opsloop.web.middleware import BodyLimit, NoNul, SecurityHeaders
from opsloop.web.responses import Json

DESCRIPTION = """OpsLoop watches a business's signals, decides what deserves attention, asks a
person when trust is not yet earned, acts, and logs every step.

Authenticate with an API token (`opsloop token create NAME --scope read|review|admin`) sent as
`Authorization: Bearer <token>`."""

PAGE_ROUTERS = [account_pages.router, inbox_pages.router, dashboard_pages.router]
PAGE_ROUTERS += [source_pages.router, action_pages.router, settings_pages.router]
PAGE_ROUTERS += [playbook_pages.router]
"""The browser UI's pages, one router per page module (see opsloop/web/ui.py)."""


def create_app(
    settings: Settings, *, service: OpsLoop | None = None, start_workers: bool = True
) -> FastAPI:
    """Build the app. With `service` given the caller owns it (tests, the demo); otherwise the
    app creates one on start-up, migrates, applies the playbooks directory and starts the
    workers, and closes it on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        auth.check_routes(app)  # again: routers may have been added after create_app
        if service is None:
            owned = OpsLoop(settings)
            owned.prepare()
            app.state.ops = owned
            if start_workers:
                owned.start()
            tune_for_serving()
            try:
                yield
            finally:
                owned.close()
        else:
            yield

    options: dict[str, Any] = {}
    accepted = inspect.signature(FastAPI.__init__).parameters
    if "telemetry" in accepted:
        # Nothing here exports traces; skip the per-request span bookkeeping.
        options["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    if "strict_content_type" in accepted:
        # `curl -d '{...}'` sends form content-type; a JSON API should still read the JSON.
        options["strict_content_type"] = False
    app = FastAPI(
        title="OpsLoop",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        default_response_class=Json,
        docs_url=None,  # the bundled Swagger page loads from a CDN; /openapi.json is served
        redoc_url=None,
        openapi_url=None,  # served by system_routes, to signed-in people and tokens only
        **options,
    )
    if service is not None:
        app.state.ops = service
    errors.install(app)
    openapi_errors.install(app)
    ui.install(app)
    for module in (ingest_routes, decision_routes, playbook_routes, model_routes, system_routes):
        app.include_router(module.router)
    app.include_router(backtest_routes.router)
    app.include_router(account_routes.router)
    app.include_router(contract_routes.router)
    app.include_router(source_routes.router)
    app.include_router(sync_routes.router)
    app.include_router(tracking_routes.router)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    # The last added runs first: headers go on every answer, the 413s of BodyLimit included.
    app.add_middleware(NoNul)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)
    auth.check_routes(app)
    return app
