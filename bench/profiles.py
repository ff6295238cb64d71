"""py-spy profiles of the server under test, summarized per thread and per function."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness import PYTHON


def start_profiler(pid: int, out: Path, *, gil: bool) -> tuple[subprocess.Popen[bytes], Path]:
    """`py-spy record` on `pid` until `stop_profiler`, collapsed stacks with thread names."""
    py_spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [
        py_spy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        "100",
        "--format",
        "raw",
        "--threads",
        "--nonblocking",
        "--output",
        str(out),
    ]
    if gil:
        command.append("--gil")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, out


def stop_profiler(
    profiler: tuple[subprocess.Popen[bytes], Path] | None,
) -> dict[str, Any] | None:
    if profiler is None:
        return None
    proc, out = profiler
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None
    if not out.exists():
        return None
    return {"file": str(out), **summarize_profile(out)}


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Self and inclusive samples per function, and samples per thread group, from py-spy's
    raw (collapsed stack) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if f]
        thread = next((f for f in frames if f.startswith("thread ")), "thread ?")
        by_thread[_thread_group(thread, frames)] += count
        code = [_frame_name(f) for f in frames if not f.startswith(("thread ", "process "))]
        if code:
            own[code[-1]] += count
        for name in set(code):
            inclusive[name] += count

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / max(total, 1), 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "threads_pct": share(by_thread),
        "self_pct": share(own),
        "inclusive_pct": share(inclusive),
    }


def _frame_name(frame: str) -> str:
    """`decide_events (opsloop/service/decide/deciding.py:40)` → `opsloop/service/decide/deciding.py:decide_events`."""
    match = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame
    function, file = match.groups()
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{function}"


def _thread_group(thread: str, frames: list[str]) -> str:
    """py-spy names threads `thread (tid): name`; group numbered names together."""
    name = thread.partition(": ")[2] or thread
    name = re.sub(r"[-_ ]?\d+$", "", name.strip())
    return {
        "opsloop-worker": "runtime workers (claim, decide, done)",
        "opsloop-heartbeat": "runtime heartbeat",
        "AnyIO worker thread": "HTTP threadpool (service.ingest.body)",
        "MainThread": "event loop (HTTP, routing, JSON responses)",
    }.get(name, name)
