"""`opsloop ...`: the command line. Each command calls the same service method as the matching
HTTP route. Settings come from OPSLOOP_* variables and opsloop.toml; the global options override
them for one run.

    root.py         the `opsloop` command: global options, the modules below assembled, main()
    common.py       consoles, settings, the `service()` block, who runs it, errors, option types
    rendering.py    the Rich tables, progress bars and formatters the commands share
    reports.py      the long reports: metrics, training and models, backtests
    serve.py        serve, worker, migrate
    demo.py         demo, flywheel (the sample business)
    events.py       ingest, import
    decisions.py    decisions, review, metrics, actions, retry, cancel
    quarantine.py   quarantine, replay
    models.py       train, models
    backtest.py     backtest
    playbooks.py    playbook validate|apply|list|readiness|promote|demote
    accounts.py     user …, token …
    sources.py      source …
    contracts.py    contract …
    ledger.py       audit verify, db stats|purge|vacuum
    llm.py          llm test|classify
    sequences.py    sequences [--status …], sequences stop ID|--all
    tasks.py        tasks [--status …], tasks done ID, tasks assign ID WHO

The command modules import only opsloop.service, opsloop.core and opsloop.settings (and the
web app in `serve`, the demo in `demo`/`flywheel`, each inside the function that launches it),
and import heavy libraries where they are used, so `opsloop --help` stays quick.
"""

from opsloop.cli.root import app, main

__all__ = ["app", "main"]
