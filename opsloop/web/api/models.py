"""Models declared in playbooks: train one now, list its versions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from opsloop.service import OpsLoop
from opsloop.web.auth import READ, Owner
from opsloop.web.deps import ops
from opsloop.web.responses import Json

router = APIRouter(tags=["models"])
Service = Annotated[OpsLoop, Depends(ops)]


@router.post(
    "/api/playbooks/{name}/train",
    summary="Train the playbook's model now; champion only with skill, beating the champion",
)
async def train(
    name: str,
    service: Service,
    who: Owner,
    actor: Annotated[
        str | None,
        Query(description="Who asks; it is audited. Default: the signed-in person or token."),
    ] = None,
    force: Annotated[bool, Query(description="Train even if the labels did not change.")] = False,
    split: Annotated[
        Literal["time", "stratified"] | None,
        Query(
            description="Hold out the latest rows (time) or a random share of each label's "
            "(stratified, for rows whose order is not time). Default: as the latest version."
        ),
    ] = None,
    evaluate: Annotated[
        Literal["auto", "holdout", "walk-forward"],
        Query(
            description="walk-forward: also train on everything before each period and score "
            "it; holdout: the held-out fifth only; auto: walk-forward too when the history "
            "spans more than three months."
        ),
    ] = "auto",
) -> Json:
    # Training takes seconds: off the event loop.
    result = await run_in_threadpool(
        service.learn.train,
        name,
        actor=actor or who.actor,
        force=force,
        split=split,
        evaluate=evaluate,
    )
    return Json(result, status_code=200 if result["status"] == "unchanged" else 201)


@router.get(
    "/api/playbooks/{name}/models",
    summary="The playbook's model versions with status, metrics and training window",
    dependencies=[Depends(READ)],
)
def list_models(name: str, service: Service) -> Json:
    return Json(service.learn.list_models(name))
