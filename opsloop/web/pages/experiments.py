"""The message experiments of a playbook (`/playbooks/{name}/experiments`): for each action
with variants, each variant's rate with its interval and probability of being best, the
expected loss of stopping now and the verdict in words, and a chart of the intervals. Owners
end an experiment keeping a variant (`POST /playbooks/{name}/experiments/end`)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from opsloop.core.errors import Conflict, NotFound
from opsloop.service import OpsLoop
from opsloop.web.deps import ops
from opsloop.web.pages.ui import PageOwner, PageReader, page_router, render

router = page_router()
Service = Annotated[OpsLoop, Depends(ops)]

ACTIVE = "/playbooks"


@router.get(
    "/playbooks/{name}/experiments",
    summary="A playbook's message experiments: variants, how sure, the winner or none yet",
)
def experiments_page(request: Request, name: str, service: Service, who: PageReader) -> Response:
    return _page(request, service, name, may_end=who.may("admin"))


def _page(
    request: Request,
    service: OpsLoop,
    name: str,
    *,
    may_end: bool,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        reports = service.learn.experiments(name)
    except NotFound:
        return render(
            request, "playbook_not_found.html", {"name": name}, status_code=404, active=ACTIVE
        )
    context: dict[str, Any] = {
        "name": name,
        "experiments": [{**r, "chart": _chart(r)} for r in reports],
        "may_end": may_end,
        "error": error,
    }
    return render(
        request, "playbook_experiments.html", context, active=ACTIVE, status_code=status_code
    )


def _chart(report: Any) -> dict[str, Any]:
    """Vega-Lite: each variant's rate (point) and 95% interval (rule)."""
    values = [
        {
            "variant": v["name"],
            "rate": v["rate"],
            "low": v["low"],
            "high": v["high"],
            "best": round(v["probability_best"], 3),
        }
        for v in report["variants"]
    ]
    y = {"field": "variant", "type": "nominal", "title": None}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": values},
        "width": "container",
        "layer": [
            {
                "mark": "rule",
                "encoding": {
                    "y": y,
                    "x": {
                        "field": "low",
                        "type": "quantitative",
                        "title": "success rate (95% interval)",
                        "axis": {"format": "%"},
                    },
                    "x2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "point", "filled": True},
                "encoding": {
                    "y": y,
                    "x": {"field": "rate", "type": "quantitative"},
                    "tooltip": [
                        {"field": "variant"},
                        {"field": "rate", "format": ".2%"},
                        {"field": "best", "title": "P(best)"},
                    ],
                },
            },
        ],
    }


@router.post(
    "/playbooks/{name}/experiments/end",
    summary="End an experiment keeping one variant (audited)",
)
async def end_experiment(request: Request, name: str, service: Service, who: PageOwner) -> Response:
    form = await request.form()
    try:
        await run_in_threadpool(
            service.learn.end_experiment,
            name,
            option=str(form.get("option") or ""),
            action=int(str(form.get("action") or "0")),
            keep=str(form.get("keep") or ""),
            actor=who.actor,
        )
    except (Conflict, NotFound, ValueError) as exc:
        return _page(request, service, name, may_end=True, error=str(exc), status_code=409)
    return RedirectResponse(f"/playbooks/{quote(name)}/experiments", status_code=303)
