"""What refusing integers beyond 64 bits costs an ingest body, in process (no server).

    .venv/bin/python bench/big_integers.py [--repeats 5]

For each body: the time orjson takes to read it, the time the check of
opsloop/perception/big_integers.py then adds (what `parse_json` runs after orjson), both in
microseconds per body (the median of `--repeats` runs), and the check as a share of orjson's
time:

* one event (~300 bytes), the common `POST /api/events` and webhook body;
* a batch of 1,000 events (~250 KB), the largest `POST /api/events` takes by default;
* a Segment batch of 100 calls whose ids are 19-digit strings (snowflake ids), the case where
  the regex finds long digit runs and the body is read again exactly to look closer;
* one event holding an integer beyond 64 bits, the refusal itself.

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opsloop.core.errors import InvalidInput  # noqa: E402
from opsloop.perception.big_integers import refuse_beyond_range  # noqa: E402


def event(n: int) -> dict[str, Any]:
    return {
        "type": "order.completed",
        "subject": f"customer:buyer{n}@example.com",
        "occurred_at": "2026-03-02T09:00:00Z",
        "payload": {"order_id": 100000 + n, "amount": 49.9, "currency": "EUR", "items": 3},
        "traits": {"plan": "pro"},
        "idempotency_key": f"order-{n}",
    }


def snowflake_batch() -> dict[str, Any]:
    calls = [
        {
            "type": "track",
            "userId": str(1234567890123456789 + n),
            "event": "Clicked",
            "messageId": str(9876543210987654321 - n),
            "properties": {"n": n},
        }
        for n in range(100)
    ]
    return {"batch": calls}


BODIES: dict[str, bytes] = {
    "one event": json.dumps(event(1)).encode(),
    "1,000 events": json.dumps({"events": [event(n) for n in range(1000)]}).encode(),
    "100 calls, 19-digit ids": json.dumps(snowflake_batch()).encode(),
    "one event, a big integer": json.dumps(
        {**event(1), "payload": {"order_id": 12345678901234567890123}}
    ).encode(),
}


def per_body(read: Callable[[bytes], Any], body: bytes, repeats: int) -> float:
    """Median microseconds per read, over `repeats` runs of enough reads to take ~0.2 s."""
    loops = max(1, int(0.2 / max(_once(read, body), 1e-7)))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            _quiet(read, body)
        runs.append((time.perf_counter() - start) / loops * 1e6)
    return statistics.median(runs)


def _once(read: Callable[[bytes], Any], body: bytes) -> float:
    start = time.perf_counter()
    _quiet(read, body)
    return time.perf_counter() - start


def _quiet(read: Callable[[bytes], Any], body: bytes) -> None:
    with contextlib.suppress(InvalidInput):  # the last body is refused, as it should be
        read(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'body':<26} {'bytes':>9} {'orjson µs':>10} {'check µs':>9} {'added':>7}")
    for name, body in BODIES.items():
        data = orjson.loads(body)
        read = per_body(orjson.loads, body, args.repeats)
        check = per_body(functools.partial(refuse_beyond_range, data=data), body, args.repeats)
        print(f"{name:<26} {len(body):>9,} {read:>10.1f} {check:>9.1f} {check / read:>+7.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
