"""Load client for bench/ingest_decide.py, run as its own process so the server under test and
the load generator never share an interpreter (they do share the machine's CPUs).

    python bench/load_client.py batch  --url URL --run-id R --batches 30 [--size 1000] [--concurrency 2]
    python bench/load_client.py single --url URL --run-id R --concurrency 8 --duration 15

`batch` sends `{"events": [...]}` bodies one after another on each of `--concurrency`
connections; every body is built before the clock starts. `single` is the fallback for machines
without wrk: an asyncio + httpx closed loop of one-event requests (it needs far more CPU per
request than wrk, so its figures understate the server on a small machine).

Both print one line `BENCH_JSON {...}`: counts, wall-clock start and end (epoch seconds),
statuses, and latency percentiles in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import time
from typing import Any

import httpx

# The API token the harness made (scope review), from the environment.
HEADERS = {"content-type": "application/json"}
if os.environ.get("OPSLOOP_TOKEN"):
    HEADERS["authorization"] = f"Bearer {os.environ['OPSLOOP_TOKEN']}"

SIZES = (4, 12, 40, 85, 150, 320, 700)
BUDGETS = (0, 1500, 4000, 5000, 12000, 30000)


def lead_created(n: int, subject: str) -> dict[str, Any]:
    """Same shape as bench/ingest_events.lua's lead.created events."""
    return {
        "type": "lead.created",
        "subject": subject,
        "traits": {
            "company_size": SIZES[n % len(SIZES)],
            "budget": BUDGETS[n % len(BUDGETS)],
            "email": f"{subject.replace(':', '-')}@example.com",
            "company": f"Co {n}",
        },
        "payload": {"form": "contact", "utm_source": "newsletter"},
        "idempotency_key": subject,
    }


def page_viewed(subject: str, i: int) -> dict[str, Any]:
    path = "/pricing" if i % 3 == 0 else f"/blog/how-to-{i}"
    return {
        "type": "page.viewed",
        "subject": subject,
        "payload": {"path": path, "referrer": "google"},
        "idempotency_key": f"{subject}/pv{i}",
    }


def event_stream(run_id: str, worker: int, views_per_lead: int):  # type: ignore[no-untyped-def]
    """Endless events: per lead, `views_per_lead` page views then its lead.created."""
    n = 0
    while True:
        subject = f"lead:{run_id}-{worker}-{n}"
        for i in range(views_per_lead):
            yield page_viewed(subject, i)
        yield lead_created(n, subject)
        n += 1


def percentiles(latencies_us: list[float]) -> dict[str, float]:
    if not latencies_us:
        return {}
    ordered = sorted(latencies_us)

    def at(p: float) -> float:
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return ordered[index]

    return {
        "min": ordered[0],
        "mean": round(statistics.fmean(ordered), 1),
        "p50": at(50),
        "p90": at(90),
        "p95": at(95),
        "p99": at(99),
        "p999": at(99.9),
        "max": ordered[-1],
    }


# --- batches ---------------------------------------------------------------------------------


def run_batches(args: argparse.Namespace) -> dict[str, Any]:
    workers = max(1, args.concurrency)
    bodies: list[list[bytes]] = [[] for _ in range(workers)]
    for worker in range(workers):
        stream = event_stream(args.run_id, worker, args.views_per_lead)
        share = args.batches // workers + (1 if worker < args.batches % workers else 0)
        for _ in range(share):
            batch = [next(stream) for _ in range(args.size)]
            bodies[worker].append(json.dumps({"events": batch}).encode())
    events_sent = sum(len(b) for b in bodies) * args.size
    lead_events = sum(
        body.count(b'"lead.created"') for worker_bodies in bodies for body in worker_bodies
    )

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(workers + 1)

    def send(worker: int) -> None:
        with httpx.Client(base_url=args.url, timeout=120.0) as client:
            client.get("/healthz")  # open the connection before the clock starts
            barrier.wait()
            for body in bodies[worker]:
                started = time.perf_counter()
                response = client.post("/api/events", content=body, headers=HEADERS)
                elapsed = (time.perf_counter() - started) * 1e6
                with lock:
                    latencies.append(elapsed)
                    key = str(response.status_code)
                    statuses[key] = statuses.get(key, 0) + 1

    threads = [threading.Thread(target=send, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.time()
    for thread in threads:
        thread.join()
    end = time.time()
    return {
        "mode": "batch",
        "start": start,
        "end": end,
        "requests": len(latencies),
        "events": events_sent,
        "lead_events": lead_events,
        "statuses": statuses,
        "latency_us": percentiles(latencies),
    }


# --- single events (fallback when wrk is missing) ---------------------------------------------


async def _single(args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(base_url=args.url, timeout=60.0, limits=limits) as client:
        await asyncio.gather(*(client.get("/healthz") for _ in range(args.concurrency)))
        start = time.time()
        deadline = time.perf_counter() + args.duration

        async def loop(worker: int) -> None:
            stream = event_stream(args.run_id, worker, args.views_per_lead)
            while time.perf_counter() < deadline:
                body = json.dumps(next(stream)).encode()
                started = time.perf_counter()
                response = await client.post("/api/events", content=body, headers=HEADERS)
                latencies.append((time.perf_counter() - started) * 1e6)
                key = str(response.status_code)
                statuses[key] = statuses.get(key, 0) + 1

        await asyncio.gather(*(loop(w) for w in range(args.concurrency)))
        end = time.time()
    bad = sum(count for status, count in statuses.items() if not status.startswith("2"))
    return {
        "mode": "single",
        "start": start,
        "end": end,
        "requests": len(latencies),
        "duration_us": int((end - start) * 1e6),
        "errors": {"connect": 0, "read": 0, "write": 0, "status": bad, "timeout": 0},
        "statuses": statuses,
        "latency_us": percentiles(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("batch", "single"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--views-per-lead", type=int, default=0)
    args = parser.parse_args()
    result = run_batches(args) if args.mode == "batch" else asyncio.run(_single(args))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
