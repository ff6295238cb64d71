"""Per-action cost of a delivery inside one process, without the job queue: what
`opsloop worker` spends in OpsLoop's own code for each action it delivers (two audited
transactions and the SMTP or HTTP exchange), measured apart from Procrastinate's share.

    .venv/bin/python bench/deliver_inprocess.py                 # 1,000 actions on PostgreSQL
    .venv/bin/python bench/deliver_inprocess.py --profile /tmp/deliver.txt   # + py-spy raw file

A fresh PostgreSQL database gets `--leads` leads through `opsloop serve --no-worker` (the
built-in lead-qualification playbook in `auto` mode, as bench/scaling.py sets it up); the web
process is stopped and this process delivers every queued action one after another through
the deliver stage, to the loopback SMTP server and chat receiver the tests use. Printed: wall
time and this process's CPU per action, PostgreSQL's CPU per action, and SQL statements per
action.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from harness import PYTHON, postgres_cpu_seconds
from scaling import Site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profile", type=Path, help="record a py-spy raw profile here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        deliver_all()
        return
    with tempfile.TemporaryDirectory(prefix="opsloop-deliver-") as tmp:
        site = Site(args.pg_url, Path(tmp))
        try:
            site.web()
            site.send_leads(args.leads)
            for process in site.processes:
                process.terminate()
                process.wait(30)
            site.processes.clear()
            command = [PYTHON, __file__, "--child"]
            if args.profile:
                py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
                command = [
                    py_spy,
                    "record",
                    "--rate",
                    "500",
                    "--format",
                    "raw",
                    "--output",
                    str(args.profile),
                    "--",
                    *command,
                ]
            subprocess.run(command, env=site.env, check=True)
            print(
                f"  received: {len(site.smtp.messages)} emails on {site.smtp.greetings}"
                " SMTP connections,"
                f" {len(site.chat.requests)} chat posts"
            )
        finally:
            site.close()


def deliver_all() -> None:
    from opsloop.gc_tuning import tune_for_serving
    from opsloop.service import OpsLoop
    from opsloop.settings import Settings

    ops = OpsLoop(Settings())
    ops.prepare()
    tune_for_serving()
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    engine = ops.ctx.db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    with engine.connect() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM actions ORDER BY id")).scalars())
    statements = 0
    started, cpu, pg = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
    outcomes: dict[str, int] = {}
    in_send = 0.0
    channel = ops.ctx.channels["email"]
    plain_send = channel.send

    def timed_send(*a: object, **k: object) -> object:
        nonlocal in_send
        began = time.thread_time()
        try:
            return plain_send(*a, **k)
        finally:
            in_send += time.thread_time() - began

    channel.send = timed_send
    for action_id in ids:
        status = ops.deliver.send(action_id)
        outcomes[status] = outcomes.get(status, 0) + 1
    wall, cpu, pg = (
        time.perf_counter() - started,
        time.process_time() - cpu,
        postgres_cpu_seconds() - pg,
    )
    n = len(ids)
    print(f"{n} actions delivered one after another in one process: {outcomes}")
    print(
        f"  per action: {wall / n * 1e3:.2f} ms wall, CPU {cpu / n * 1e3:.2f} ms here and"
        f" {pg / n * 1e3:.2f} ms in PostgreSQL;"
        f" {statements / n:.1f} SQL statements; sending {in_send / n * 1e3:.2f} ms CPU"
        f" ({n / wall:.0f} actions/s on one thread)"
    )
    ops.close()


if __name__ == "__main__":
    sys.exit(main())
