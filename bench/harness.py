"""The parts of bench/ingest_decide.py that deal with processes and the machine: the server
under test (`opsloop serve` in a subprocess), counts read from its database, the PostgreSQL
benchmark database, and CPU accounting from /proc.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PLAYBOOK = ROOT / "playbooks" / "lead-qualification.yaml"
PYTHON = sys.executable


# --- the machine ---------------------------------------------------------------------------


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used since boot (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL process on the machine, including backends that have
    exited (the postmaster's reaped-children time): the database side of the PostgreSQL runs.
    Other databases' work on the same server counts too."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            total += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def children_cpu_seconds() -> float:
    """CPU seconds used by this script's finished children (wrk, the load clients)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_until_quiet(server: Server, limit: float, most: float = 0.25) -> float:
    """Wait (up to `limit` s) until other processes use under `most` cores; return their use."""
    deadline = time.monotonic() + limit
    while True:
        busy, own = machine_busy_seconds(), server.cpu_seconds()
        time.sleep(2.0)
        others = (machine_busy_seconds() - busy - (server.cpu_seconds() - own)) / 2.0
        if others < most or time.monotonic() >= deadline:
            return round(others, 2)


def shadow_playbook() -> str:
    """The built-in lead-qualification playbook in `shadow` mode: decide and log, no actions."""
    shadow = re.sub(r"(?m)^mode: \w+", "mode: shadow", PLAYBOOK.read_text())
    assert "mode: shadow" in shadow, "the playbook's mode line was not found"
    return shadow


@contextlib.contextmanager
def shadow_service(database_url: str | None, prefix: str) -> Iterator[Any]:
    """An OpsLoop service in this process, prepared, with the shadow playbook in a temp data
    dir (SQLite there unless `database_url`); closed and removed afterwards."""
    from opsloop.service import OpsLoop
    from opsloop.settings import Settings

    work = Path(tempfile.mkdtemp(prefix=prefix))
    playbooks = work / "playbooks"
    playbooks.mkdir()
    (playbooks / PLAYBOOK.name).write_text(shadow_playbook())
    ops = OpsLoop(
        Settings(data_dir=work / "data", playbooks_dir=playbooks, database_url=database_url)
    )
    try:
        ops.prepare()
        yield ops
    finally:
        ops.close()
        shutil.rmtree(work, ignore_errors=True)


# --- the server under test -------------------------------------------------------------------


class Server:
    """`opsloop serve` in a subprocess with its own data dir, playbooks dir and port."""

    def __init__(
        self,
        backend: str,
        database_url: str | None,
        work: Path,
        src: Path | None = None,
        *,
        lock_stats: bool = False,
        processes: int = 1,
    ) -> None:
        self.backend = backend
        self.processes = processes
        self.src = src
        self.lock_stats_path = work / "write-lock.json" if lock_stats and not database_url else None
        self.work = work
        self.data_dir = work / "data"
        self.playbooks_dir = work / "playbooks"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.log_path = work / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        """An API token of scope review for the load generators, made in `start`."""

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "opsloop.db"

    def start(self) -> None:
        self.playbooks_dir.mkdir(parents=True, exist_ok=True)
        (self.playbooks_dir / PLAYBOOK.name).write_text(shadow_playbook())
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")}
        env.update(
            OPSLOOP_DATA_DIR=str(self.data_dir),
            OPSLOOP_PLAYBOOKS_DIR=str(self.playbooks_dir),
            OPSLOOP_PORT=str(self.port),
            OPSLOOP_LOG_LEVEL="WARNING",
            OPSLOOP_CONFIG=str(self.work / "no-opsloop.toml"),
        )
        if self.database_url:
            env["OPSLOOP_DATABASE_URL"] = self.database_url
        if self.src:  # a source tree (e.g. `git archive HEAD`) instead of the installed package
            env["PYTHONPATH"] = str(self.src)
        opsloop = Path(PYTHON).parent / "opsloop"
        command = (
            [str(opsloop), "serve"] if opsloop.exists() else [PYTHON, "-m", "opsloop", "serve"]
        )
        made = subprocess.run(
            [PYTHON, "-m", "opsloop", "token", "create", "bench", "--scope", "review"],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        # Commits from before accounts (bench/compare.py runs old ones) have no tokens and
        # no authentication on /api/events: they are driven without one.
        self.token = made.stdout.strip() if made.returncode == 0 else ""
        if self.lock_stats_path:
            env["OPSLOOP_BENCH_LOCK_STATS"] = str(self.lock_stats_path)
            command = [PYTHON, str(BENCH / "sqlite_write_lock.py")]
        if self.processes > 1:  # uvicorn's workers, children of the process started here
            command += ["--processes", str(self.processes)]
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            command, cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited at start-up:\n{self.log_tail()}")
            try:
                answer = httpx.get(f"{self.url}/readyz", timeout=2)
                if answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the server was not ready within 60 s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def memory_mb(self) -> dict[str, float]:
        """Resident memory now (VmRSS) and its peak so far (VmHWM), in MiB; with
        `processes`, summed over the web processes."""
        found = {"VmRSS": 0.0, "VmHWM": 0.0}
        for pid in self._family():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in found:
                    found[key] += int(value.split()[0]) / 1024
        return {"rss_mb": round(found["VmRSS"], 1), "peak_rss_mb": round(found["VmHWM"], 1)}

    def _family(self) -> list[int]:
        """The server's process and, with `processes`, its children (the web processes)."""
        if self.processes == 1:
            return [self.pid]
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [self.pid, *(int(child) for child in children)]

    def cpu_seconds(self) -> float:
        """The server's CPU time: with `processes`, its web processes' too (those running;
        uvicorn restarts none during a run)."""
        return sum(_process_cpu_seconds(pid) for pid in self._family())

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def reset_lock_stats(self) -> None:
        if self.lock_stats_path:
            self.proc.send_signal(signal.SIGUSR2)  # type: ignore[union-attr]

    def lock_stats(self) -> dict[str, list[float]] | None:
        """Write-lock counts since the last reset (with `lock_stats`, on SQLite)."""
        if not self.lock_stats_path:
            return None
        self.lock_stats_path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)  # type: ignore[union-attr]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.lock_stats_path.exists():
                return json.loads(self.lock_stats_path.read_text())  # type: ignore[no-any-return]
            time.sleep(0.05)
        return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


class Ledger:
    """Counts read straight from the server's database, so polling costs the server nothing
    but a shared read (a WAL reader on SQLite, a plain SELECT on PostgreSQL)."""

    def __init__(self, server: Server) -> None:
        if server.database_url:
            import psycopg

            self.conn: Any = psycopg.connect(_libpq_url(server.database_url), autocommit=True)
            # `count(*) … WHERE id > mark`, polled five times a second, is planned as a scan of
            # the whole table while the statistics say it is empty (autovacuum off): the
            # benchmark's own polling then cost PostgreSQL more with every batch, up to a fifth
            # of a core. On the primary key's index it costs the rows counted.
            self.conn.execute("SET enable_seqscan = off")
            self.param = "%s"
        else:
            self.conn = sqlite3.connect(
                server.sqlite_path, isolation_level=None, timeout=30, check_same_thread=False
            )
            self.param = "?"
        self.lock = threading.Lock()  # the DecisionWatch thread shares this connection

    def _one(self, sql: str, *args: Any) -> int:
        sql = sql.replace("?", self.param)
        with self.lock:
            value = self.conn.execute(sql, args).fetchone()[0]
        return int(value or 0)

    def mark(self) -> tuple[int, int]:
        """The newest event and decision ids: counts below are of rows after these."""
        return (
            self._one("SELECT max(id) FROM events"),
            self._one("SELECT max(id) FROM decisions"),
        )

    def triggering_events_since(self, mark: tuple[int, int]) -> int:
        return self._one(
            "SELECT count(*) FROM events WHERE id > ? AND type = 'lead.created'", mark[0]
        )

    def events_since(self, mark: tuple[int, int]) -> int:
        return self._one("SELECT count(*) FROM events WHERE id > ?", mark[0])

    def decisions_since(self, mark: tuple[int, int]) -> int:
        return self._one("SELECT count(*) FROM decisions WHERE id > ?", mark[1])

    def error_decisions_since(self, mark: tuple[int, int]) -> int:
        return self._one(
            "SELECT count(*) FROM decisions WHERE id > ? AND status = 'error'", mark[1]
        )

    def analyze(self) -> None:
        """Refresh PostgreSQL's planner statistics, as autovacuum would (when it is on)."""
        if self.param == "%s":
            with self.lock:
                self.conn.execute("ANALYZE")

    def audit_rows(self) -> int:
        return self._one("SELECT count(*) FROM audit")

    def close(self) -> None:
        self.conn.close()


class DecisionWatch:
    """Polls the decision count in a thread and remembers when it changed, so the time the
    count reached N is known to within one poll even if N is only known later."""

    def __init__(self, ledger: Ledger, mark: tuple[int, int]) -> None:
        self.ledger = ledger
        self.mark = mark
        self.samples: list[tuple[float, int]] = []
        self.interval = 0.2
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DecisionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.ledger.decisions_since(self.mark)))
            self._stop.wait(self.interval)

    def wait_for(self, target: int, timeout: float) -> float | None:
        """The wall-clock time the decision count first reached `target`."""
        self.interval = 0.05
        deadline = time.time() + timeout
        while time.time() < deadline:
            for at, count in list(self.samples):
                if count >= target:
                    return at
            time.sleep(0.02)
        return None


# --- PostgreSQL ------------------------------------------------------------------------------


def _libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"opsloop_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(_libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = _libpq_url(admin_url).rsplit("/", 1)[0]
    return name, f"{base.replace('postgresql://', 'postgresql+psycopg://')}/{name}"


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_version(admin_url: str) -> str:
    import psycopg

    try:
        with psycopg.connect(_libpq_url(admin_url), autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            autovacuum = conn.execute("SHOW autovacuum").fetchone()
    except Exception as exc:  # only for the report
        return f"unreachable ({type(exc).__name__})"
    return f"{version[0] if version else '?'}, autovacuum {autovacuum[0] if autovacuum else '?'}"


# --- the report's machine line ----------------------------------------------------------------


def machine(args: argparse.Namespace) -> dict[str, Any]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    wrk_version = "missing: using bench/load_client.py (asyncio + httpx)"
    if args.wrk:
        out = subprocess.run([args.wrk, "-v"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout + out.stderr).strip().splitlines()[0]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgres": pg_version(args.pg_url) if "postgres" in args.backends else None,
        "load_generator": wrk_version,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
