"""The server and the CLI start without loading the learning libraries: scikit-learn, scipy,
pandas, Polars and the OpenAI client together add about 100 MiB and a second of start-up, and
a business without models, backtests or an LLM never needs them (the memory budget is 200 MB)."""

from __future__ import annotations

import subprocess
import sys

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
