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
from collections.abc import Callable, Hashable
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
        self,
        store: Callable[[list[Item]], list[Result]],
        *,
        max_items: int = 2000,
        writers: int = 1,
        key: Callable[[Item], Hashable] | None = None,
    ) -> None:
        """`writers`: threads each running a transaction at a time. One where the database
        has one writer anyway (SQLite); more where a transaction mostly waits on round trips
        (PostgreSQL), so that one group is read and decided while another commits.

        `key`: what must be stored in the order it was queued (an event's subject). A writer
        whose group shares a key with the group another writer is storing waits for it, and
        groups are taken from the queue one writer at a time, so two items with one key are
        stored in queue order, the second seeing the first committed: a burst of posts about
        one lead is decided as one writer would (its cooldown keeps one decision)."""
        self.store = store
        self.max_items = max_items
        self.writers = writers
        self.key = key
        self._queue: queue.SimpleQueue[_Call[Item, Result] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._taking = threading.Lock()  # one writer at a time takes a group from the queue
        self._storing = threading.Condition()  # guards `_busy`
        self._busy: set[Hashable] = set()
        self.waiting = 0
        """Writers waiting for another to finish with a key of their group (at most one: the
        others wait to take a group)."""

    def start(self) -> None:
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._run, name="opsloop-group-commit", daemon=True)
                for _ in range(self.writers)
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        if self._threads:
            for _ in self._threads:
                self._queue.put(None)
            for thread in self._threads:
                thread.join(30)
            self._threads = []

    @property
    def running(self) -> bool:
        return bool(self._threads)

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
            with self._taking:
                calls, stop = self._take()
                keys = self._claim(calls)
            try:
                if calls:
                    self._commit(calls)
            finally:
                self._release(keys)
            if stop:
                return

    def _take(self) -> tuple[list[_Call[Item, Result]], bool]:
        """The calls waiting now (at least one, waited for), and whether to stop after them."""
        first = self._queue.get()
        if first is None:
            return [], True
        calls = [first]
        size = len(first.items)
        while size < self.max_items:
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if call is None:
                return calls, True
            calls.append(call)
            size += len(call.items)
        return calls, False

    def _claim(self, calls: list[_Call[Item, Result]]) -> set[Hashable]:
        """Wait until no other writer is storing one of these calls' keys, then mark them."""
        if self.key is None or self.writers == 1:
            return set()
        keys = {self.key(item) for call in calls for item in call.items}
        with self._storing:
            if not self._busy.isdisjoint(keys):
                self.waiting += 1
                self._storing.wait_for(lambda: self._busy.isdisjoint(keys))
                self.waiting -= 1
            self._busy |= keys
        return keys

    def _release(self, keys: set[Hashable]) -> None:
        if keys:
            with self._storing:
                self._busy -= keys
                self._storing.notify_all()

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
