"""Web: the JSON API, ingest routes, health endpoints and the browser UI. Routes hold no
business logic; they read the request, call the service façade and shape the answer.

JSON routes live in api/, server-rendered pages in pages/ (built on pages/ui.py, whose docstring
says how to add one); what both use sits here: the app (app.py), who may call what (auth.py),
errors, middleware, request and response plumbing. Every route declares who may call it."""
