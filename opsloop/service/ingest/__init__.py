"""Ingest: signals become events. Webhooks, tracking calls, pulled sources and imports are
checked, stored once or kept in quarantine with the reason, and handed to `decide`."""
