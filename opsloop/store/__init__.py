"""Store: the ledger's tables, named queries and migrations. SQLite and PostgreSQL."""
