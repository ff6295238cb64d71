"""Runtime: jobs, delayed jobs, periodic work. `base.Runtime` is the contract; `inprocess` is
the backend for one process on SQLite (or PostgreSQL)."""
