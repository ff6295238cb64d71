"""The server and the CLI start without loading the learning libraries: scikit-learn, scipy,
pandas, Polars and the OpenAI client together add about 100 MiB and a second of start-up, and
a business without models, backtests or an LLM never needs them (the memory budget is 200 MB).

A command that only reads the ledger loads no more than it uses either: Alembic is for a
database behind the newest revision, httpx for deliveries, phonenumbers and email-validator
for normalizing contact fields, Jinja2 for templates and PyYAML for reading files
(docs/performance.md#cli-start-up)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("sklearn", "scipy", "pandas", "polars", "openai", "skops", "vaderSentiment", "torch")
HEAVY += ("altair",)  # the dashboard's charts: imported when the first one is drawn


def test_serving_and_the_cli_do_not_import_the_learning_libraries() -> None:
    probe = (
        "import sys, opsloop.web.app, opsloop.cli, opsloop.service; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "", f"imported at start-up: {loaded}"


LOADED_WHEN_USED = ("alembic", "httpx", "phonenumbers", "email_validator", "jinja2", "yaml")


def test_listing_decisions_on_a_current_database_loads_only_what_it_uses(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
    env |= {"OPSLOOP_DATA_DIR": str(tmp_path / "data"), "OPSLOOP_CONFIG": str(tmp_path / "none")}
    migrate = [sys.executable, "-m", "opsloop", "migrate"]
    subprocess.run(migrate, env=env, cwd=tmp_path, capture_output=True, check=True)
    probe = (
        "import sys\n"
        "from opsloop.service import OpsLoop\n"
        "from opsloop.settings import Settings\n"
        "ops = OpsLoop(Settings())\n"
        "ops.db.migrate()\n"
        "ops.decide.list_decisions()\n"
        "ops.close()\n"
        f"print(','.join(m for m in {LOADED_WHEN_USED!r} if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "", f"imported to list decisions: {loaded}"
