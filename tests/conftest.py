"""Shared fixtures: real databases (SQLite file per test; PostgreSQL database per test cloned
from a migrated template), a real SMTP server and a real HTTP server on loopback, and the app
served by uvicorn on a free port."""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from opsloop.service import OpsLoop
from opsloop.settings import Settings
from opsloop.store import playbooks as playbook_store
from opsloop.store.database import Database
from tests.sinks import HttpSink, SmtpSink, free_port

ROOT = Path(__file__).resolve().parents[1]
LEAD_PLAYBOOK = ROOT / "playbooks" / "lead-qualification.yaml"
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # test-only secret, base64

PG_URL = os.environ.get(
    "OPSLOOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("CI") or os.environ.get("OPSLOOP_REQUIRE_POSTGRES") == "1"

SHARED_DATA = ROOT.parent / "shared" / "data"

# The CLI's Rich consoles read COLUMNS once, when opsloop.cli is first imported; whichever test
# imports it first (on whichever xdist worker) must not decide how wide every table is.
os.environ["COLUMNS"] = "200"


@pytest.fixture
def shoppers_csv() -> Path:
    """The UCI Online Shoppers export from ../shared/data. Locally a missing copy skips with
    the reason printed; in CI, which always runs with ../shared beside the project, it fails."""
    path = SHARED_DATA / "uci_online_shoppers" / "online_shoppers_intention.csv"
    if not path.is_file():
        reason = f"{path} is not here: put the shared data sets in ../shared/data (see its README)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI runs with ../shared beside the project")
        print(reason)
        pytest.skip(reason)
    return path


# --- clock -----------------------------------------------------------------------------------


class Clock:
    """A clock tests move by hand: windows and timers without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


# --- databases -------------------------------------------------------------------------------


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once; each test clones it (CREATE DATABASE … TEMPLATE)."""
    problem = _postgres_available()
    if problem:
        message = f"PostgreSQL is unreachable at {PG_URL} ({problem}); start it or set OPSLOOP_TEST_POSTGRES_URL"
        if REQUIRE_PG:
            pytest.fail(message + " — CI requires PostgreSQL", pytrace=False)
        pytest.skip(message)
    name = f"opsloop_tpl_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    db.migrate()
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# Services opened on each database URL, closed before that database is dropped.
_OPEN: dict[str, list[OpsLoop]] = {}


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    name = f"opsloop_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # From PostgreSQL 15 on, FILE_COPY copies the template's few files instead of writing
        # them through the WAL (the new default): 62 ms a clone instead of 170, a cheaper drop.
        newer = conn.execute(sa.text("SHOW server_version_num")).scalar_one()
        strategy = " STRATEGY = FILE_COPY" if int(newer) >= 150000 else ""
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"{strategy}'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    for ops in _OPEN.pop(url, []):
        ops.close()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per test process; each test starts from a copy of it, as
    PostgreSQL tests start from a clone of `pg_template`."""
    path = tmp_path_factory.mktemp("sqlite-template") / "opsloop.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()  # the last connection closing checkpoints the WAL into the file
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return _sqlite_copy(sqlite_template, tmp_path)
    return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    return _sqlite_copy(sqlite_template, tmp_path)


def _sqlite_copy(template: Path, folder: Path) -> str:
    path = folder / "opsloop.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


# --- the service -----------------------------------------------------------------------------

OpsFactory = Callable[..., OpsLoop]


@pytest.fixture
def make_ops(tmp_path: Path, clock: Clock) -> Iterator[OpsFactory]:
    """Build an OpsLoop on a database URL with settings overrides; the playbooks given are
    applied. Its workers are not started: tests run jobs with `ops.run_jobs()`."""
    made: list[OpsLoop] = []

    def factory(
        url: str, *, playbooks: list[str] | None = None, use_clock: bool = True, **overrides: Any
    ) -> OpsLoop:
        data_dir = tmp_path / f"data{len(made)}"
        data_dir.mkdir()
        base: dict[str, Any] = {
            "data_dir": data_dir,
            "database_url": url,
            "webhook_secret": WEBHOOK_SECRET,
            "outbox_backoff_base_seconds": 0.05,
            "outbox_backoff_max_seconds": 0.2,
            "worker_poll_seconds": 0.05,
            # Review digests are tested on their own (tests/service/test_review_deadlines.py);
            # elsewhere they would be extra mail in the sinks.
            "review_digest_minutes": 0,
        }
        settings = Settings(**{**base, **overrides})
        ops = OpsLoop(settings, clock=clock if use_clock else _utcnow)
        ops.prepare()
        for text in playbooks or []:
            applied = ops.decide.apply_playbook(text, "test.yaml", actor="test")
            if "\nmode: auto" in text:
                grant_auto(ops.ctx.db, applied.name)
        made.append(ops)
        _OPEN.setdefault(url, []).append(ops)
        return ops

    yield factory
    for ops in made:
        ops.close()


def grant_auto(db: Database, playbook: str) -> None:
    """Put a playbook in `auto` as if it had earned it. Tests of what `auto` does start here;
    tests of how it is earned (tests/service/test_autonomy.py) go through reviews instead."""
    with db.transaction() as tx:
        record = playbook_store.get_playbook(tx.conn, playbook)
        assert record is not None, playbook
        playbook_store.set_mode(tx.conn, record["id"], "auto", datetime.now(UTC))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def lead_playbook(mode: str = "recommend", **replace: str) -> str:
    text = LEAD_PLAYBOOK.read_text().replace("mode: recommend", f"mode: {mode}")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


# --- sinks -----------------------------------------------------------------------------------


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def http_sink() -> Iterator[HttpSink]:
    sink = HttpSink()
    sink.start()
    yield sink
    sink.stop()


def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until `check()` returns something truthy; fail with its last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s (last value: {last!r})")


def sessions_waiting_on_a_lock(db: Database) -> int:
    """PostgreSQL: how many sessions of this database wait on a lock (another's row)."""
    with db.read() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
        )


# --- the app over real HTTP ----------------------------------------------------------------


class LiveServer:
    """The app served by uvicorn on a free loopback port. `client()` talks to it with an
    admin API token (made on first use); `url` is there for anonymous or other principals."""

    def __init__(self, ops: OpsLoop) -> None:
        import uvicorn

        from opsloop.web.app import create_app

        self.ops = ops
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(ops.settings, service=ops)
        self._token: str | None = None
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        eventually(lambda: self.server.started, timeout=15)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def headers(self) -> dict[str, str]:
        """`Authorization` with an admin API token."""
        if self._token is None:
            self._token = self.ops.accounts.create_token("tests", "admin", actor="tests").token
        return {"Authorization": f"Bearer {self._token}"}

    def client(self, *, timeout: float = 10) -> httpx.Client:
        """An HTTP client on this server that authenticates with an admin API token."""
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)


Serve = Callable[[OpsLoop], LiveServer]
"""The `serve` fixture: start a live server for a service."""


@pytest.fixture
def serve() -> Iterator[Serve]:
    servers: list[LiveServer] = []

    def start(ops: OpsLoop) -> LiveServer:
        server = LiveServer(ops)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def artifacts_dir() -> Path:
    path = ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
