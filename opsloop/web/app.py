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
from opsloop.web import auth, errors, openapi_errors
from opsloop.web.api import accounts as accounts_api
from opsloop.web.api import ask as ask_api
from opsloop.web.api import backtests as backtests_api
from opsloop.web.api import contracts as contracts_api
from opsloop.web.api import decisions as decisions_api
from opsloop.web.api import documents as documents_api
from opsloop.web.api import experiments as experiments_api
from opsloop.web.api import forecasts as forecasts_api
from opsloop.web.api import ingest as ingest_api
from opsloop.web.api import models as models_api
from opsloop.web.api import playbook_templates as playbook_templates_api
from opsloop.web.api import playbooks as playbooks_api
from opsloop.web.api import reports as reports_api
from opsloop.web.api import sources as sources_api
from opsloop.web.api import syncs as syncs_api
from opsloop.web.api import system as system_api
from opsloop.web.api import tracking as tracking_api
from opsloop.web.fast_ingest import FastIngest
from opsloop.web.middleware import (
    MAX_UPLOAD_BYTES,
    BodyLimit,
    NoNul,
    SecurityHeaders,
    is_ingest_or_upload,
    is_upload,
)
from opsloop.web.pages import accounts as accounts_page
from opsloop.web.pages import actions as actions_page
from opsloop.web.pages import ask as ask_page
from opsloop.web.pages import dashboard as dashboard_page
from opsloop.web.pages import documents as documents_page
from opsloop.web.pages import experiments as experiments_page
from opsloop.web.pages import forecasts as forecasts_page
from opsloop.web.pages import inbox as inbox_page
from opsloop.web.pages import models as models_page
from opsloop.web.pages import playbook_form as playbook_form_page
from opsloop.web.pages import playbook_templates as playbook_templates_page
from opsloop.web.pages import playbooks as playbooks_page
from opsloop.web.pages import reports as reports_page
from opsloop.web.pages import sequences as sequences_page
from opsloop.web.pages import settings as settings_page
from opsloop.web.pages import source_setup as source_setup_page
from opsloop.web.pages import sources as sources_page
from opsloop.web.pages import tasks as tasks_page
from opsloop.web.pages import ui
from opsloop.web.responses import Json

DESCRIPTION = """OpsLoop watches a business's signals, decides what deserves attention, asks a
person when trust is not yet earned, acts, and logs every step.

Authenticate with an API token (`opsloop token create NAME --scope read|review|admin`) sent as
`Authorization: Bearer <token>`."""

API_ROUTERS = [ingest_api.router, decisions_api.router]
# Templates before playbooks: `/api/playbooks/{name}` would take `_templates` for a name.
API_ROUTERS += [playbook_templates_api.router, playbooks_api.router, models_api.router]
API_ROUTERS += [system_api.router, backtests_api.router, accounts_api.router, contracts_api.router]
API_ROUTERS += [sources_api.router, syncs_api.router, tracking_api.router]
API_ROUTERS += [experiments_api.router]
API_ROUTERS += [forecasts_api.router]
API_ROUTERS += [reports_api.router]
API_ROUTERS += [documents_api.router]
API_ROUTERS += [ask_api.router]
"""The JSON API (with ingest, tracking and health), one router per module of opsloop/web/api/,
included before the pages."""

PAGE_ROUTERS = [accounts_page.router, inbox_page.router, dashboard_page.router]
# Set-up before the source pages: `/sources/{name}` would take `_new` for a name.
PAGE_ROUTERS += [source_setup_page.router, sources_page.router]
PAGE_ROUTERS += [actions_page.router, settings_page.router]
# Templates before the playbooks pages: `/playbooks/{name}` would take `_templates` for a name.
PAGE_ROUTERS += [playbook_templates_page.router, playbooks_page.router, models_page.router]
PAGE_ROUTERS += [sequences_page.router, tasks_page.router]
PAGE_ROUTERS += [playbook_form_page.router]
PAGE_ROUTERS += [experiments_page.router]
PAGE_ROUTERS += [forecasts_page.router]
PAGE_ROUTERS += [reports_page.router]
PAGE_ROUTERS += [documents_page.router]
PAGE_ROUTERS += [ask_page.router]
"""The browser UI's pages, one router per module of opsloop/web/pages/ (see pages/ui.py)."""


def app_from_environment() -> FastAPI:
    """The app for settings read from the environment: the factory each web process imports
    when `opsloop serve --processes N` (or uvicorn/gunicorn) starts several."""
    return create_app(Settings())


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
            owned.start(workers=start_workers and settings.serve_workers)
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
        openapi_url=None,  # served by api/system.py, to signed-in people and tokens only
        **options,
    )
    if service is not None:
        app.state.ops = service
    errors.install(app)
    openapi_errors.install(app)
    ui.install(app)
    for router in API_ROUTERS:
        app.include_router(router)
    for router in PAGE_ROUTERS:
        app.include_router(router)
    # The last added runs first: headers go on every answer, the 413s of BodyLimit included.
    app.add_middleware(NoNul, exempt=is_ingest_or_upload)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes, exempt=is_ingest_or_upload)
    app.add_middleware(BodyLimit, limit=MAX_UPLOAD_BYTES, exempt=lambda path: not is_upload(path))
    app.add_middleware(SecurityHeaders)
    # Outermost: a token sender's plain ingest is answered before the layers above.
    app.add_middleware(FastIngest)
    auth.check_routes(app)
    return app
