"""OpsLoop: signals in, explained decisions, human review, reliable actions, a ledger underneath."""

__version__ = "0.1.0"
