"""Scale-out on PostgreSQL: actions delivered per second with 1, 2 and 4 `opsloop worker`
processes, and events decided per second with 1 and 2 web processes.

    .venv/bin/python bench/scaling.py                        # both measurements, ~4 min
    .venv/bin/python bench/scaling.py --leads 3000 --workers 1 2 4 --web 1 2

Each run gets a fresh PostgreSQL database (dropped afterwards) with the built-in
lead-qualification playbook in `auto` mode, so every lead's decision queues its actions: a hot
lead a chat notification (to a loopback HTTP receiver) and a task, a cold lead an email (to a
loopback SMTP server, aiosmtpd).

* **Deliveries.** `opsloop serve --no-worker` takes `--leads` leads in 1,000-event batches
  while no worker runs, so the actions wait in the queue; then N `opsloop worker --concurrency
  4` processes start together and the clock runs until every action is delivered (read from
  the database). Figure: actions delivered per second.
* **Decisions.** `opsloop serve --no-worker --processes P` with one worker beside it, driven by
  wrk with single lead.created events at concurrency 8 for `--duration` seconds. Figure:
  requests per second, each one an event stored and decided (the decisions are counted in the
  database after the run). With `--web-alone`, each web count runs again with no worker, the
  actions left waiting in the queue.

Everything shares this machine's cores: the web processes, the workers, PostgreSQL, the
receivers and the load generator.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from harness import BENCH, PLAYBOOK, PYTHON, ROOT, create_pg_database, drop_pg_database

sys.path.insert(0, str(ROOT))
from tests.sinks import HttpSink, SmtpSink, free_port  # the receivers the tests use

OPSLOOP = [PYTHON, "-m", "opsloop"]


class Site:
    """One fresh database and its settings, the receivers, and the processes started on it."""

    def __init__(self, admin_url: str, work: Path) -> None:
        self.admin_url = admin_url
        self.name, self.url = create_pg_database(admin_url)
        self.work = work
        self.smtp = SmtpSink()
        self.chat = HttpSink()
        self.smtp.start()
        self.chat.start()
        self.port = free_port()
        playbooks = work / "playbooks"
        playbooks.mkdir(parents=True)
        (playbooks / PLAYBOOK.name).write_text(PLAYBOOK.read_text())
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OPSLOOP_")},
            "OPSLOOP_DATABASE_URL": self.url,
            "OPSLOOP_DATA_DIR": str(work / "data"),
            "OPSLOOP_PLAYBOOKS_DIR": str(playbooks),
            "OPSLOOP_CONFIG": str(work / "none.toml"),
            "OPSLOOP_PORT": str(self.port),
            "OPSLOOP_SMTP_HOST": "127.0.0.1",
            "OPSLOOP_SMTP_PORT": str(self.smtp.port),
            "OPSLOOP_NOTIFY_CHANNELS": json.dumps(
                {"sales": f"http://127.0.0.1:{self.chat.port}/chat"}
            ),
            "OPSLOOP_LOG_LEVEL": "WARNING",
        }
        subprocess.run([*OPSLOOP, "migrate"], env=self.env, check=True, capture_output=True)
        # Earned autonomy is granted here by hand, as the tests do: actions run without review.
        subprocess.run(
            [*OPSLOOP, "playbook", "apply", str(playbooks / PLAYBOOK.name)],
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.engine = sa.create_engine(self.url)
        with self.engine.begin() as conn:
            conn.execute(sa.text("UPDATE playbooks SET mode = 'auto'"))
        made = subprocess.run(
            [*OPSLOOP, "token", "create", "bench", "--scope", "review"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        self.token = made.stdout.strip().splitlines()[-1]
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{args[0]}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen([*OPSLOOP, *args], env=self.env, stdout=log, stderr=log)
        self.processes.append(process)
        return process

    def web(self, processes: int = 1) -> None:
        self.start("serve", "--no-worker", "--processes", str(processes))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit("the web process did not start")

    def send_leads(self, count: int) -> None:
        """`count` lead.created events to the web process, in 1,000-event batches."""
        headers = {"Authorization": f"Bearer {self.token}"}
        for start in range(0, count, 1000):
            answer = httpx.post(
                f"http://127.0.0.1:{self.port}/api/events",
                json={"events": leads(start, min(1000, count - start))},
                headers=headers,
                timeout=120,
            )
            answer.raise_for_status()

    def count(self, sql: str) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.engine.dispose()
        self.smtp.stop()
        self.chat.stop()
        drop_pg_database(self.admin_url, self.name)


def leads(start: int, count: int) -> list[dict[str, Any]]:
    """Alternately hot (notify + task) and cold (email) leads."""
    return [
        {
            "type": "lead.created",
            "subject": f"lead:{n}",
            "idempotency_key": f"lead-{n}",
            "traits": {
                "email": f"l{n}@shop.test",
                "company_size": 50 if n % 2 == 0 else 2,
                "budget": 9000 if n % 2 == 0 else 0,
            },
            "payload": {"pricing_views": 6 if n % 2 == 0 else 0},
        }
        for n in range(start, start + count)
    ]


def deliveries(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="opsloop-scaling-") as tmp:
        site = Site(args.pg_url, Path(tmp))
        try:
            site.web()
            site.send_leads(args.leads)
            queued = site.count("SELECT count(*) FROM actions")
            began = time.monotonic()
            for _ in range(workers):
                site.start("worker", "--concurrency", str(args.concurrency))
            while site.count("SELECT count(*) FROM actions WHERE status = 'delivered'") < queued:
                if time.monotonic() - began > args.timeout:
                    raise SystemExit(f"not every action was delivered within {args.timeout} s")
                time.sleep(0.1)
            seconds = time.monotonic() - began
            received = len(site.smtp.messages) + len(site.chat.requests)
        finally:
            site.close()
    return {
        "workers": workers,
        "actions": queued,
        "seconds": round(seconds, 2),
        "delivered_per_s": round(queued / seconds, 1),
        "received_by_sinks": received,
    }


def decisions(args: argparse.Namespace, web: int, *, worker: bool = True) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed for the decisions run (apt-get install -y wrk)")
    with tempfile.TemporaryDirectory(prefix="opsloop-scaling-") as tmp:
        site = Site(args.pg_url, Path(tmp))
        try:
            site.web(web)
            if worker:  # delivering what the decisions queue, on the same cores
                site.start("worker", "--concurrency", str(args.concurrency))
            done = subprocess.run(
                [
                    wrk,
                    "-t2",
                    "-c8",
                    f"-d{args.duration}s",
                    "--timeout",
                    "30s",
                    "-s",
                    str(BENCH / "ingest_events.lua"),
                    f"http://127.0.0.1:{site.port}",
                    "--",
                    f"web{web}",
                    "0",
                ],
                env={**os.environ, "OPSLOOP_TOKEN": site.token},
                capture_output=True,
                text=True,
                check=True,
            )
            figures = next(
                json.loads(line.removeprefix("BENCH_JSON "))
                for line in done.stdout.splitlines()
                if line.startswith("BENCH_JSON ")
            )
            decided = site.count("SELECT count(*) FROM decisions")
        finally:
            site.close()
    seconds = figures["duration_us"] / 1e6
    return {
        "web_processes": web,
        "requests": figures["requests"],
        "req_per_s": round(figures["requests"] / seconds, 1),
        "decided": decided,
        "p99_ms": round(figures["latency_us"]["p99"] / 1000, 1),
        "non_2xx": figures["errors"]["status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--web", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per web run")
    parser.add_argument(
        "--web-alone",
        action="store_true",
        help="also run each web count with no worker beside it (the actions wait in the queue): "
        "what deciding and queueing cost without the deliveries' share of the cores",
    )
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.leads} leads; workers run {args.concurrency} jobs each")
    for count in args.workers:
        row = deliveries(args, count)
        print(
            f"deliveries  {count} worker(s): {row['actions']} actions in {row['seconds']} s = "
            f"{row['delivered_per_s']} actions/s ({row['received_by_sinks']} reached the "
            "receivers; tasks stay inside OpsLoop)",
            flush=True,
        )
    for count in args.web:
        for worker in (True, False) if args.web_alone else (True,):
            row = decisions(args, count, worker=worker)
            beside = "a worker delivering beside it" if worker else "no worker"
            print(
                f"decisions   {count} web process(es), {beside}: {row['req_per_s']} events/s "
                f"decided (p99 {row['p99_ms']} ms, {row['decided']} decisions, "
                f"non-2xx {row['non_2xx']})",
                flush=True,
            )


if __name__ == "__main__":
    main()
