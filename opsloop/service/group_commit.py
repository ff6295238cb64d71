"""Group commit: concurrent ingest calls share one transaction.

Every ingest must be durable before it is acknowledged, so each one costs a commit (an fsync
on SQLite) and, on SQLite, the single write lock. Under concurrent load a writer thread takes
every call waiting at that moment, stores their events in one transaction, and then answers
all of them: eight clients cost one commit instead of eight, and a batch's history and
decisions are read and written with one statement each.

A call is answered only after the transaction holding its events has committed. If a group
fails, each call in it is retried on its own, so one call's trouble is never another's.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Call(Generic[Item, Result]):
    items: list[Item]
    future: Future[list[Result]] = field(default_factory=Future)


class GroupCommitter(Generic[Item, Result]):
    """Runs `store(items) -> results` (one result per item, in order) on a writer thread,
    merging the calls that queue up while a transaction is running."""

    def __init__(
        self, store: Callable[[list[Item]], list[Result]], *, max_items: int = 2000
    ) -> None:
        self.store = store
        self.max_items = max_items
        self._queue: queue.SimpleQueue[_Call[Item, Result] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="opsloop-group-commit", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(30)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def submit(self, items: list[Item]) -> list[Result]:
        """Store `items`; return once they are committed (or raise what storing them raised)."""
        return self.enqueue(items).result()

    def enqueue(self, items: list[Item]) -> Future[list[Result]]:
        """Queue `items`; the future resolves once they are committed. Async callers await it
        (`asyncio.wrap_future`) without tying up a thread."""
        call: _Call[Item, Result] = _Call(items)
        self._queue.put(call)
        return call.future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            calls = [first]
            size = len(first.items)
            stop = False
            while size < self.max_items:
                try:
                    call = self._queue.get_nowait()
                except queue.Empty:
                    break
                if call is None:
                    stop = True
                    break
                calls.append(call)
                size += len(call.items)
            self._commit(calls)
            if stop:
                return

    def _commit(self, calls: list[_Call[Item, Result]]) -> None:
        if len(calls) > 1:
            try:
                results = self.store([item for call in calls for item in call.items])
            except Exception:
                log.warning(
                    "a group of %d ingest calls failed together; retrying each alone", len(calls)
                )
            else:
                start = 0
                for call in calls:
                    call.future.set_result(results[start : start + len(call.items)])
                    start += len(call.items)
                return
        for call in calls:
            try:
                call.future.set_result(self.store(call.items))
            except Exception as exc:
                call.future.set_exception(exc)
