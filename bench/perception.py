"""How fast declared sources take signals in, through a real `opsloop serve` over loopback.

    .venv/bin/python bench/perception.py                 # SQLite, 3 repeats
    .venv/bin/python bench/perception.py --backend postgres --repeats 5

Scenarios (each run `--repeats` times; the table shows medians):

* Stripe-signed `checkout.session.completed` deliveries to `POST /hooks/stripe` (signature
  checked, built-in mapping, built-in contract, stored, decided), one at a time and from 8
  threads: deliveries/s and latency per delivery;
* Segment `POST /v1/batch` with 100 `track` calls each, one after another: calls/s;
* a drop-folder sync of a 20,000-row CSV (`opsloop source sync`: mapped, stored, decided on):
  rows/s from the command's start to its end, process start-up included.

The load runs on the same 2 cores as the server: the figures are a floor.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import stripe
from harness import PYTHON, Server, create_pg_database, drop_pg_database

STRIPE_SECRET = "whsec_bench_0123456789"
WRITE_KEY = "wk_bench_0123456789"


def checkout(n: int) -> bytes:
    return json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": f"cs_{n}",
                    "amount_total": 1000 + n,
                    "currency": "eur",
                    "customer_details": {"email": f"buyer{n}@example.com", "name": "B"},
                }
            },
        }
    ).encode()


def deliver(client: httpx.Client, url: str, n: int) -> float:
    body = checkout(n)
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), STRIPE_SECRET, timestamp=int(time.time())
    )
    started = time.perf_counter()
    answer = client.post(url, content=body, headers={"Stripe-Signature": header})
    elapsed = time.perf_counter() - started
    if answer.status_code != 201:
        raise SystemExit(f"delivery refused: {answer.status_code} {answer.text}")
    return elapsed


def webhooks(server: Server, count: int, threads: int) -> dict[str, float]:
    url = f"{server.url}/hooks/stripe"
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        clients = [httpx.Client(timeout=30) for _ in range(threads)]
        latencies = list(pool.map(lambda n: deliver(clients[n % threads], url, n), range(count)))
        for client in clients:
            client.close()
    took = time.perf_counter() - started
    latencies.sort()
    return {
        "per_s": count / took,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
    }


def segment_batches(server: Server, batches: int, size: int) -> dict[str, float]:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    started = time.perf_counter()
    with httpx.Client(timeout=60, headers={"Authorization": auth}) as client:
        for b in range(batches):
            calls = [
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": f"anon-{b}-{i % 20}",
                    "messageId": uuid.uuid4().hex,
                    "properties": {"sku": f"SKU-{i}", "price": 9.5},
                }
                for i in range(size)
            ]
            answer = client.post(f"{server.url}/v1/batch", json={"batch": calls})
            if answer.status_code != 200 or answer.json()["stored"] != size:
                raise SystemExit(f"batch not stored whole: {answer.status_code} {answer.text}")
    took = time.perf_counter() - started
    return {"per_s": batches * size / took, "batch_ms": took / batches * 1000}


def folder_sync(server: Server, env: dict[str, str], rows: int, run: int) -> dict[str, float]:
    folder = server.work / f"drop-{run}"
    folder.mkdir()
    lines = ["order_id,email,total,currency,placed_at"]
    lines += [
        f"R{run}-{n},buyer{n}@example.com,{10 + n % 90}.50,EUR,2026-11-20 10:{n % 60:02d}:00"
        for n in range(rows)
    ]
    (folder / "orders.csv").write_text("\n".join(lines) + "\n")
    definition = server.work / f"folder-{run}.yaml"
    definition.write_text(
        f"""\
name: drop-{run}
kind: folder
folder:
  path: {folder}
  pattern: "*.csv"
  key: order_id
mapping:
  type: order.imported
  subject: "'customer:' + email"
  occurred_at: placed_at
"""
    )
    cli(env, "source", "add", str(definition))
    started = time.perf_counter()
    said = cli(env, "source", "sync", f"drop-{run}")
    took = time.perf_counter() - started
    if f"{rows:,} stored" not in said:
        raise SystemExit(f"the sync did not store every row:\n{said}")
    return {"per_s": rows / took, "seconds": took}


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, "-m", "opsloop", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"opsloop {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--deliveries", type=int, default=300)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--pg-admin", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="opsloop-bench-") as tmp:
        work = Path(tmp)
        database_url, pg_name = None, None
        if args.backend == "postgres":
            pg_name, database_url = create_pg_database(args.pg_admin)
        server = Server(args.backend, database_url, work)
        server.start()
        env = {
            "OPSLOOP_DATA_DIR": str(server.data_dir),
            "OPSLOOP_CONFIG": str(work / "no-opsloop.toml"),
            "PATH": "/usr/bin:/bin",
        }
        if database_url:
            env["OPSLOOP_DATABASE_URL"] = database_url
        (work / "stripe.yaml").write_text(
            "name: stripe\nkind: webhook\nverify: stripe\nmapping: stripe\n"
        )
        (work / "stripe.secret").write_text(STRIPE_SECRET)
        (work / "site.yaml").write_text("name: site\nkind: segment\n")
        (work / "site.secret").write_text(WRITE_KEY)
        cli(
            env,
            "source",
            "add",
            str(work / "stripe.yaml"),
            "--secret-file",
            str(work / "stripe.secret"),
        )
        cli(
            env,
            "source",
            "add",
            str(work / "site.yaml"),
            "--secret-file",
            str(work / "site.secret"),
        )
        results: dict[str, list[dict[str, float]]] = {}
        try:
            for run in range(args.repeats):
                results.setdefault("webhook, 1 at a time", []).append(
                    webhooks(server, args.deliveries, 1)
                )
                results.setdefault("webhook, 8 threads", []).append(
                    webhooks(server, args.deliveries, 8)
                )
                results.setdefault("segment batch of 100", []).append(
                    segment_batches(server, 20, 100)
                )
                results.setdefault(f"folder sync, {args.rows:,} rows", []).append(
                    folder_sync(server, env, args.rows, run)
                )
        finally:
            server.stop()
            if pg_name:
                drop_pg_database(args.pg_admin, pg_name)
    print(f"backend {args.backend}, {args.repeats} repeats, medians")
    for name, runs in results.items():
        keys = runs[0].keys()
        shown = ", ".join(f"{k} {statistics.median(r[k] for r in runs):,.1f}" for k in keys)
        print(f"{name:28} {shown}")


if __name__ == "__main__":
    main()
