"""`opsloop serve` with SQLite's process-wide write lock instrumented: how long each kind of
write transaction waits for the lock and holds it. A diagnostic for bench/ingest_decide.py
(`--lock-stats`), not a server to run otherwise.

    OPSLOOP_DATA_DIR=... OPSLOOP_BENCH_LOCK_STATS=/tmp/lock.json python bench/sqlite_write_lock.py

SIGUSR2 clears the counts; SIGUSR1 writes them to $OPSLOOP_BENCH_LOCK_STATS as
`{"<module>:<function>": [transactions, seconds waiting, seconds holding], ...}`, keyed by the
opsloop function that opened the transaction. It wraps `Database._write_lock`, an internal of
opsloop/store/database.py: if that changes, this script says so and serves uninstrumented.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import defaultdict
from types import FrameType
from typing import Any

STATS: defaultdict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
_local = threading.local()


def _opener() -> str:
    frame: FrameType | None = sys._getframe(3)
    while frame is not None:
        path = frame.f_code.co_filename
        if "opsloop" in path and not path.endswith(("database.py", "contextlib.py")):
            return f"{os.path.basename(path)}:{frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


class TimedLock:
    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, *args: Any, **kwargs: Any) -> bool:
        asked = time.perf_counter()
        got = self._lock.acquire(*args, **kwargs)
        _local.since = time.perf_counter()
        _local.waited = _local.since - asked
        _local.opener = _opener()
        return got

    def release(self) -> None:
        held = time.perf_counter() - _local.since
        self._lock.release()
        counts = STATS[_local.opener]
        counts[0] += 1
        counts[1] += _local.waited
        counts[2] += held


def _instrument() -> None:
    from opsloop.store import database

    original = database.Database.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if getattr(self, "_write_lock", None) is not None:
            self._write_lock = TimedLock()
        elif self.is_sqlite:
            print("sqlite_write_lock: no Database._write_lock; not instrumented", file=sys.stderr)

    database.Database.__init__ = init  # type: ignore[method-assign]


def _dump(*_: object) -> None:
    out = os.environ["OPSLOOP_BENCH_LOCK_STATS"]
    with open(out + ".part", "w") as file:
        json.dump(dict(STATS), file)
    os.replace(out + ".part", out)


def main() -> None:
    _instrument()
    signal.signal(signal.SIGUSR1, _dump)
    signal.signal(signal.SIGUSR2, lambda *_: STATS.clear())
    from opsloop.cli import app

    sys.argv = ["opsloop", "serve"]
    app()


if __name__ == "__main__":
    main()
