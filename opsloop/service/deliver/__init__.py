"""Deliver: the outbox. Actions are claimed, sent through their channels with retries and
idempotency keys, dead-lettered when they fail for good, and their channels checked."""
