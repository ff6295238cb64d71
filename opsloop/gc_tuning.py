"""Garbage-collector settings for OpsLoop processes: long-running ones (serve, worker, demo) and
each run of a command.

Each event allocates many short-lived objects (parsed JSON, explanations, SQL parameters), so
CPython's collector runs often, and each full collection walks every object the process holds,
most of them the libraries loaded at start-up. Freezing what exists once start-up is done takes
those out of every later collection, and a higher first threshold makes young collections
rarer. Measured on the batch benchmark: about 30% less CPU per event (docs/performance.md).

A command's run is mostly start-up: importing the service makes over 100,000 objects the
collector tracks, which live until the process ends; the default threshold (700) walks them
again and again while they are made, and at exit the interpreter's last collections walk them
once more, to free what the operating system is about to take back anyway. Skipping that work
takes about 150 ms off `opsloop decisions` (docs/performance.md#cli-start-up).
"""

from __future__ import annotations

import gc

_THRESHOLDS = (50_000, 20, 100)


def tune_for_serving() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_THRESHOLDS)


def tune_for_command() -> None:
    """At the start of a command: young collections as rare as in a server."""
    gc.set_threshold(*_THRESHOLDS)


def skip_collections_at_exit() -> None:
    """When a command is done: leave every object out of the collections the interpreter runs
    as it exits. Objects still alive then are not promised a finalizer anyway; files, database
    connections and threads are closed by the `with` blocks that opened them."""
    gc.freeze()
