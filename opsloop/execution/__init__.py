"""Execution: action handlers (channels) and the outbox that delivers each action exactly once."""
