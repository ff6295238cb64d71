"""The server and the CLI start without loading the learning libraries: scikit-learn, scipy,
pandas, Polars and the OpenAI client together add about 100 MiB and a second of start-up, and
a business without models, backtests or an LLM never needs them (the memory budget is 200 MB).

A command that only reads the ledger loads no more than it uses either: Alembic is for a
database behind the newest revision, httpx for deliveries, phonenumbers and email-validator
for normalizing contact fields, Jinja2 for templates and PyYAML for reading files
(docs/performance.md#cli-start-up). Nor does it load the stages of the service it does not
use: importing `opsloop.service` builds no stage, and each stage is imported when first used."""

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


def migrated_data_dir(tmp_path: Path) -> dict[str, str]:
    """The environment of a command on a fresh SQLite data directory at the newest schema."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
    env |= {"OPSLOOP_DATA_DIR": str(tmp_path / "data"), "OPSLOOP_CONFIG": str(tmp_path / "none")}
    migrate = [sys.executable, "-m", "opsloop", "migrate"]
    subprocess.run(migrate, env=env, cwd=tmp_path, capture_output=True, check=True)
    return env


def with_the_service(tmp_path: Path, steps: str, printed: str) -> str:
    """What a fresh process prints after building the service on a migrated data directory,
    running `steps` (lines of Python using `ops`) and closing it; `printed` is an expression
    that may use `loaded(modules)`, the comma-separated modules of those it has imported."""
    env = migrated_data_dir(tmp_path)
    probe = (
        "import sys\n"
        "from opsloop.service import OpsLoop\n"
        "from opsloop.settings import Settings\n"
        "def loaded(modules): return ','.join(m for m in modules if m in sys.modules)\n"
        "ops = OpsLoop(Settings())\n"
        f"{steps}"
        "ops.close()\n"
        f"print({printed})\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_listing_decisions_on_a_current_database_loads_only_what_it_uses(tmp_path: Path) -> None:
    steps = "ops.db.migrate()\nops.decide.list_decisions()\n"
    loaded = with_the_service(tmp_path, steps, f"loaded({LOADED_WHEN_USED!r})")
    assert loaded == "", f"imported to list decisions: {loaded}"


def test_a_server_with_nothing_to_learn_does_not_load_them_in_its_periodic_jobs(
    tmp_path: Path,
) -> None:
    """The first round of periodic jobs (documents folder, retention, syncs, retraining,
    outcomes, schedules) on a fresh install: none has anything to learn from, so none loads
    the learning libraries. The documents job once did, through the ask stage's index, and a
    server's memory went from 130 to 280 MiB in its first minute."""
    printed = with_the_service(tmp_path, "ran = ops.runtime.run_due()\n", f"ran, loaded({HEAVY!r})")
    ran, _, loaded = printed.partition(" ")
    assert int(ran) >= 5, f"only {ran} periodic jobs ran"
    assert loaded == "", f"imported by the periodic jobs: {loaded}"


STAGES_NOT_USED = (
    "opsloop.service.learn.training",  # the learn façade and the model jobs
    "opsloop.service.ingest.history_import",  # the ingest façade
    "opsloop.service.ingest.syncing",  # the ingest façade and the sync jobs
)


def test_listing_decisions_at_the_command_line_imports_no_other_stage(tmp_path: Path) -> None:
    """`opsloop decisions` builds the service, whose constructor registers every background
    job, and uses the decide stage only: the other stages are imported when first used."""
    env = migrated_data_dir(tmp_path)
    listed = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "opsloop", "decisions"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "No decisions match" in listed.stdout
    imported = {
        line.rpartition("|")[2].strip()
        for line in listed.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "opsloop.service.decide.facade" in imported
    loaded = [module for module in STAGES_NOT_USED if module in imported]
    assert loaded == [], f"imported to list decisions: {loaded}"


def test_every_export_of_the_service_is_there_when_asked_for() -> None:
    """The types and functions `opsloop.service` exports are imported on first use (PEP 562);
    each name of `__all__` still answers, as the object its stage module holds."""
    import opsloop.service as service

    for name in service.__all__:
        assert getattr(service, name) is not None, name
    from opsloop.service import Quality
    from opsloop.service.ingest.quality import Quality as QualityInItsStage

    assert Quality is QualityInItsStage
