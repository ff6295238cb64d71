"""Web: the JSON API, ingest routes and health endpoints. Routes hold no business logic; they
read the request, call the service façade and shape the answer."""
