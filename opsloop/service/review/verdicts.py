"""Review: a person approves, overrides or rejects a pending decision.

Approve runs the chosen option's actions; override runs the option the person chose instead
(choosing it is the approval) and records why; reject runs nothing. The review, the status
change, the actions and their delivery jobs commit together.
"""

from __future__ import annotations

from opsloop.core.decisions import VERDICTS, Decision, ReviewRequest
from opsloop.core.errors import Conflict, FieldError, InvalidInput, NotFound
from opsloop.core.events import did_you_mean
from opsloop.core.playbooks import Option, parse_playbook
from opsloop.service.context import Context
from opsloop.service.deliver.acting import act
from opsloop.service.review.autonomy import demote_if_unearned
from opsloop.store import audit
from opsloop.store import decisions as decision_store
from opsloop.store import playbooks as playbook_store

_STATUS = {"approve": "approved", "override": "overridden", "reject": "rejected"}


def review(ctx: Context, decision_id: int, request: ReviewRequest) -> Decision:
    _check_shape(request)
    now = ctx.clock()
    dropped = None
    with ctx.db.transaction() as tx:
        conn = tx.conn
        decision = decision_store.get_decision(conn, decision_id, lock=True)
        if decision is None:
            raise NotFound(f"no decision {decision_id}")
        after_the_fact = decision.status == "auto" and decision.sampled
        if after_the_fact and decision_store.reviews_of(conn, decision_id):
            raise Conflict(f"decision {decision_id} was already reviewed")
        if decision.status != "pending" and not after_the_fact:
            raise Conflict(
                f"decision {decision_id} is {decision.status}, not pending; it cannot be reviewed again"
            )
        playbook = ctx.catalog.active().get(decision.playbook)
        if playbook is None or playbook.version != decision.playbook_version:
            # Review against the version that made the decision, even if it has changed since.
            options = _options_of_version(ctx, decision)
        else:
            options = playbook.compiled.playbook.options
        final = decision.choice
        if request.verdict == "override":
            if request.option not in options:
                raise InvalidInput(
                    [
                        FieldError(
                            "option",
                            f"no option {request.option!r}{did_you_mean(str(request.option), options)}; "
                            f"choose one of {', '.join(options)}",
                        )
                    ]
                )
            if request.option == decision.choice:
                raise InvalidInput(
                    [
                        FieldError(
                            "option",
                            f"{request.option!r} is what the playbook chose; approve it instead",
                        )
                    ]
                )
            final = request.option
        elif request.verdict == "reject":
            final = None
        reply = _final_draft(decision, final, request) if not after_the_fact else None
        status = _STATUS[request.verdict]
        if after_the_fact:
            # Its actions already ran; the review is evidence for readiness, and a disagreement
            # is for a person to follow up, not a second set of actions.
            status, final = "auto", decision.final_choice
        elif not decision_store.settle(
            conn, decision_id, status=status, final_choice=final, at=now
        ):
            raise Conflict(f"decision {decision_id} was reviewed by someone else a moment ago")
        decision_store.insert_review(
            conn,
            decision_id=decision_id,
            verdict=request.verdict,
            option=request.option if request.verdict == "override" else None,
            reason=request.reason,
            reviewer=request.reviewer,
            at=now,
            draft=reply,
        )
        audit.record(
            conn,
            now,
            request.reviewer,
            f"decision.{_STATUS[request.verdict]}",
            decision_id,
            {
                "choice": decision.choice,
                "final_choice": final,
                "reason": request.reason,
                "after_the_fact": after_the_fact,
                **({"draft_edited": reply != _prepared(decision)} if reply is not None else {}),
                **({"option": request.option} if request.verdict == "override" else {}),
            },
        )
        if final is not None and not after_the_fact:
            act(ctx, tx, decision, final, options[final], now, draft=reply)
        record = playbook_store.get_playbook(conn, decision.playbook)
        if record is not None:
            dropped = demote_if_unearned(conn, ctx, record)
        settled = decision_store.get_decision(conn, decision_id)
    if dropped is not None:
        ctx.catalog.invalidate()
    assert settled is not None
    return settled


def _final_draft(decision: Decision, final: str | None, request: ReviewRequest) -> str | None:
    """The reply the final option sends as `{{ draft }}`: the reviewer's text, else the
    AI-prepared draft as it stands. None when the option sends no draft."""
    if final is None or final not in _drafted(decision):
        if request.draft is not None and final is not None:
            raise InvalidInput(
                [FieldError("draft", f"option {final!r} sends no drafted reply; leave it out")]
            )
        return None
    reply = request.draft if request.draft is not None else _prepared(decision)
    if not (reply or "").strip():
        why = (decision.explanation.get("text") or {}).get("draft_error")
        hint = f" (no draft was prepared: {why})" if why else ""
        raise InvalidInput(
            [FieldError("draft", f"option {final!r} sends a reply a person writes{hint}: give it")]
        )
    return reply


def _prepared(decision: Decision) -> str | None:
    draft = (decision.explanation.get("text") or {}).get("draft")
    return draft if isinstance(draft, str) else None


def _drafted(decision: Decision) -> list[str]:
    return list(decision.explanation.get("drafted_options", []))


def _check_shape(request: ReviewRequest) -> None:
    errors = []
    if request.verdict not in VERDICTS:
        errors.append(FieldError("verdict", f"must be one of {', '.join(VERDICTS)}"))
    if request.verdict == "override" and not request.option:
        errors.append(FieldError("option", "an override names the option to run instead"))
    if request.verdict in ("override", "reject") and not (request.reason or "").strip():
        errors.append(
            FieldError(
                "reason", f"say why you {request.verdict} it; the reason becomes training data"
            )
        )
    if not request.reviewer.strip():
        errors.append(FieldError("reviewer", "is required"))
    if errors:
        raise InvalidInput(errors)


def _options_of_version(ctx: Context, decision: Decision) -> dict[str, Option]:
    with ctx.db.read() as conn:
        record = playbook_store.get_playbook(conn, decision.playbook)
        assert record is not None
        versions = {v["version"]: v for v in playbook_store.list_versions(conn, record["id"])}
    version = versions[decision.playbook_version]
    playbook, _ = parse_playbook(version["source"], version["file"])
    return dict(playbook.options)
