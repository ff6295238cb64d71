"""What hostile YAML costs OpsLoop: the "billion laughs" bomb and its kin, read by the parser
(each case in a fresh process, so its peak memory is its own) and sent to a live server.

    .venv/bin/python bench/yaml_bomb.py           # the parser as it is, and a live server (~20 s)
    .venv/bin/python bench/yaml_bomb.py --before  # also the parser before issue 10 (~2 min more),
                                                  # on the cases it survives (6-level bomb, 1 MiB list)

The nine-level bomb is never given to the parser of before: followed, its aliases stand for
387 million strings, some 20 GB. Each child process runs under a 4 GiB address-space limit
all the same, so a mistake fails with MemoryError instead of taking the machine down.

Printed per case: the outcome, wall time, the growth of the process's peak resident memory
(ru_maxrss, above the same process after its imports) and the peak of Python allocations
(tracemalloc). For the live server: the answer, its time, and the server's peak resident memory
(VmHWM) after each request.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402
from harness import Server  # noqa: E402

from tests.hostile_yaml import bomb  # noqa: E402

MIB = 1024 * 1024
CHILD_MEMORY_LIMIT = 4 * 1024 * MIB


def texts() -> dict[str, str]:
    return {
        "bomb, 6 levels": bomb(6),
        "bomb, 9 levels": bomb(9),
        "1 MiB list of short items": "- a\n" * (MIB // 4),
        "10,000 nested [": "[" * 10_000,
        "1 MiB of one text value": "a: " + "x" * (MIB - 3),
    }


BEFORE_SURVIVES = ("bomb, 6 levels", "1 MiB list of short items")
"""The cases the parser of before can be given without eating the machine."""


# --- the parser of before, as it was at commit 0a4b16d (opsloop/core/yaml_source.py) ----------


def parse_before(text: str) -> dict[tuple[Any, ...], int]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        loader.construct_document(node)
    finally:
        loader.dispose()
    lines: dict[tuple[Any, ...], int] = {}
    _record_before(node, (), lines)
    return lines


def _record_before(node: yaml.Node, path: tuple[Any, ...], lines: dict[Any, int]) -> None:
    # Walks aliases as often as they are used, keeping a line per path: the bomb's cost.
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, str(key_node.value))
            lines[child] = key_node.start_mark.line + 1
            _record_before(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_before(item, (*path, index), lines)


# --- one case in a child process ---------------------------------------------------------------


def child(case: str, parser: str) -> None:
    """Parse one case and print what it cost as JSON (run as `--child CASE PARSER`)."""
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY_LIMIT, CHILD_MEMORY_LIMIT))
    from opsloop.core.errors import PlaybookInvalid
    from opsloop.core.yaml_source import parse_yaml

    text = texts()[case]
    if parser == "before" and case not in BEFORE_SURVIVES:
        raise SystemExit(f"{case!r} is not given to the parser of before")

    def parse() -> str:
        try:
            if parser == "before":
                return f"read: {len(parse_before(text)):,} paths recorded"
            parse_yaml(text, "bench.yaml")
            return "read"
        except PlaybookInvalid as exc:
            return f"refused: {exc}"
        except MemoryError:
            return f"MemoryError at the {CHILD_MEMORY_LIMIT // MIB} MiB limit"

    # Timed without tracemalloc, which slows allocation-heavy parsing several times over;
    # then once more under it, for the peak of Python allocations alone.
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    outcome = parse()
    seconds = time.perf_counter() - started
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base
    tracemalloc.start()
    parse()
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "outcome": outcome,
                "seconds": seconds,
                "rss_mb": grown / 1024,
                "traced_mb": traced / MIB,
            }
        )
    )


def in_child(case: str, parser: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", case, parser],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"outcome": f"child failed: {done.stderr.strip().splitlines()[-1:]}"}
    return json.loads(done.stdout)  # type: ignore[no-any-return]


# --- the live server ---------------------------------------------------------------------------


def live() -> None:
    print("\nA live `opsloop serve` (SQLite), POST /api/playbooks/validate with a review token:")
    print(f"{'body':28} {'bytes':>9} {'answer':>7} {'seconds':>8} {'server peak RSS':>16}  healthz")
    with tempfile.TemporaryDirectory() as folder:
        server = Server("sqlite", None, Path(folder))
        server.start()
        try:
            headers = {"Authorization": f"Bearer {server.token}"}
            print(
                f"{'(after start-up)':28} {'':>9} {'':>7} {'':>8} "
                f"{server.memory_mb()['peak_rss_mb']:>13.1f} MB"
            )
            bodies = {name: text.encode() for name, text in texts().items()}
            bodies["2 MiB body (over the limit)"] = b"- a\n" * (2 * MIB // 4)
            with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                for name, body in bodies.items():
                    started = time.perf_counter()
                    answer = client.post("/api/playbooks/validate", content=body)
                    seconds = time.perf_counter() - started
                    health = client.get("/healthz").status_code
                    peak = server.memory_mb()["peak_rss_mb"]
                    print(
                        f"{name:28} {len(body):>9,} {answer.status_code:>7} {seconds:>8.3f} "
                        f"{peak:>13.1f} MB  {health}"
                    )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", action="store_true", help="also the parser before issue 10")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "PARSER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    print("The parser, each case in a fresh process:")
    print(f"{'case':28} {'parser':7} {'seconds':>8} {'peak RSS +':>11} {'traced':>9}  outcome")
    for case in texts():
        for which in ("before", "now") if args.before else ("now",):
            if which == "before" and case not in BEFORE_SURVIVES:
                continue
            found = in_child(case, which)
            if "seconds" not in found:
                print(f"{case:28} {which:7} {found['outcome']}")
                continue
            print(
                f"{case:28} {which:7} {found['seconds']:>8.3f} {found['rss_mb']:>8.1f} MB "
                f"{found['traced_mb']:>6.1f} MB  {found['outcome'][:90]}"
            )
    live()


if __name__ == "__main__":
    main()
