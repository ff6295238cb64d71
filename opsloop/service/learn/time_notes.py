"""What a training report must say about the times its rows carry: events imported with
`opsloop import --file-order` have the file's order, not real dates (one minute apart from
1 January 2000), so windows such as `within: 7d`, days-since features, the dated test period
and walk-forward periods follow the rows' order in the file, not the calendar."""

from __future__ import annotations

from opsloop.core.playbooks import Playbook
from opsloop.service.context import Context
from opsloop.service.ingest.history_import import file_order_imports


def file_order_note(ctx: Context, playbook: Playbook) -> str | None:
    types = set(playbook.trigger.events)
    if playbook.outcome is not None:
        types |= {*playbook.outcome.success, *playbook.outcome.failure}
    found = file_order_imports(ctx, types)
    if not found:
        return None
    files = ", ".join(sorted({item.file for item in found}))
    return (
        f"times are file order, not real dates: {files} was imported with --file-order, so "
        "time windows, days-since features and the test period follow the order of the rows "
        "in the file, not the calendar"
    )
