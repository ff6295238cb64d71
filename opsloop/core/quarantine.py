"""What the quarantine keeps of refused input, shared by the store that keeps it and the web
edge that reads an oversized body only this far."""

from __future__ import annotations

KEEP_BYTES = 64 * 1024
"""What is kept of a body refused for its size: enough to recognize the sender."""
