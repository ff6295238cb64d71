"""Message experiments as people see them: how each variant of an action is doing on the
playbook's outcome, how sure that is, and a person's decision to end one and keep a winner.
The maths is opsloop/learning/experiments.py; the choosing, opsloop/service/decide/experiments.py.
"""

from __future__ import annotations

from opsloop.core.errors import Conflict, NotFound
from opsloop.core.experiment_reports import ExperimentReport, VariantReport
from opsloop.learning.experiments import Tally, in_words, seed_for, standing
from opsloop.service.context import ActivePlaybook, Context
from opsloop.service.decide.experiments import experiments_of
from opsloop.store import audit
from opsloop.store import experiments as experiment_store


def _active(ctx: Context, name: str) -> ActivePlaybook:
    playbook = ctx.catalog.active().get(name)
    if playbook is None:
        raise NotFound(f"no active playbook named {name!r}")
    return playbook


def experiments(ctx: Context, name: str) -> list[ExperimentReport]:
    """One report per action with variants, in the playbook's order."""
    playbook = _active(ctx, name)
    found = list(experiments_of(playbook.compiled.playbook))
    if not found:
        return []
    with ctx.db.read() as conn:
        counts = experiment_store.variant_counts(conn, playbook.id)
        ended = experiment_store.ended(conn, name)
    now = ctx.clock()
    reports: list[ExperimentReport] = []
    for option, position, action in found:
        mine = {c.variant: c for c in counts if c.option == option and c.position == position}
        names = [variant.name for variant in action.variants]
        tallies = {
            n: Tally(mine[n].successes, mine[n].failures) if n in mine else Tally(0, 0)
            for n in names
        }
        result = standing(tallies, seed=seed_for(name, option, position) % 2**32)
        variants: list[VariantReport] = []
        for variant, figures in zip(action.variants, result.variants, strict=True):
            variants.append(
                {
                    "name": variant.name,
                    "changes": variant.fields(),
                    "sends": mine[variant.name].sends if variant.name in mine else 0,
                    "resolved": figures.resolved,
                    "successes": figures.successes,
                    "rate": figures.rate,
                    "low": figures.low,
                    "high": figures.high,
                    "probability_best": figures.probability_best,
                }
            )
        end = ended.get((option, position))
        verdict = in_words(result)
        if end is not None:
            verdict = (
                f"Ended by {end['by']}: only {end['winner']!r} is sent now. "
                f"The figures since: {verdict}"
            )
        reports.append(
            {
                "playbook": name,
                "option": option,
                "action": position,
                "kind": action.kind,
                "variants": variants,
                "leader": result.leader,
                "expected_loss": result.expected_loss,
                "threshold": result.threshold,
                "winner": result.winner,
                "verdict": verdict,
                "ended": (
                    {"winner": end["winner"], "by": end["by"], "at": end["at"]}
                    if end is not None
                    else None
                ),
                "generated_at": now,
            }
        )
    return reports


def end_experiment(
    ctx: Context, name: str, *, option: str, action: int, keep: str, actor: str
) -> ExperimentReport:
    """A person ends an experiment keeping `keep`: recorded in the audit trail with the
    standing at that moment; decisions from now on send only `keep`."""
    reports = {(r["option"], r["action"]): r for r in experiments(ctx, name)}
    report = reports.get((option, action))
    if report is None:
        raise NotFound(f"playbook {name!r} has no experiment on action {action} of {option!r}")
    if report["ended"] is not None:
        raise Conflict(
            f"this experiment was ended by {report['ended']['by']}, keeping "
            f"{report['ended']['winner']!r}"
        )
    if keep not in {variant["name"] for variant in report["variants"]}:
        names = ", ".join(variant["name"] for variant in report["variants"])
        raise Conflict(f"no variant {keep!r} in this experiment; its variants: {names}")
    now = ctx.clock()
    detail = {
        "winner": keep,
        "at": now.isoformat(),
        "leader": report["leader"],
        "expected_loss": report["expected_loss"],
        "probability_best": {v["name"]: v["probability_best"] for v in report["variants"]},
        "sends": {v["name"]: v["sends"] for v in report["variants"]},
    }
    with ctx.db.transaction() as tx:
        audit.record(
            tx.conn,
            now,
            actor,
            experiment_store.ENDED,
            experiment_store.experiment_id(name, option, action),
            detail,
            object_type=experiment_store.OBJECT_TYPE,
        )
    return experiments(ctx, name)[list(reports).index((option, action))]
