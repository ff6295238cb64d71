"""The forecast report of a playbook (`/playbooks/{name}/forecasts`): each product's forecast,
stock, days of cover and reorder point, out of stock first, and how the weekly forecast and the
reorder policy would have done over the last weeks, per product and overall."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import Conflict, NotFound
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.pages.ui import PageReader, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

ACTIVE = "/playbooks"


@router.get(
    "/playbooks/{name}/forecasts",
    summary="A playbook's demand forecasts per product and overall, with their backtest",
)
async def forecasts_page(
    request: Request,
    name: str,
    service: Service,
    who: PageReader,
    weeks: Annotated[str, Query(description="Weeks to backtest, 1 to 26.")] = "8",
) -> Response:
    # A page answers a page: a number out of range is brought into it, not refused.
    asked = int(weeks) if weeks.strip().lstrip("-").isdigit() and len(weeks) < 10 else 8
    try:
        report = await run_in_threadpool(
            service.learn.forecast_report, name, weeks=min(max(asked, 1), 26)
        )
    except NotFound:
        return render(
            request, "playbook_not_found.html", {"name": name}, status_code=404, active=ACTIVE
        )
    except Conflict as exc:
        context = {"name": name, "report": None, "reason": str(exc)}
        # No forecasts for this playbook: nothing here, said in words.
        return render(request, "playbook_forecasts.html", context, active=ACTIVE, status_code=404)
    return render(
        request,
        "playbook_forecasts.html",
        {"name": name, "report": report, "reason": None},
        active=ACTIVE,
    )
