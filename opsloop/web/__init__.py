"""Web: the JSON API, ingest routes, health endpoints and the browser UI. Routes hold no
business logic; they read the request, call the service façade and shape the answer.

Every route declares who may call it (auth.py); pages are built on ui.py, whose docstring says
how to add one."""
