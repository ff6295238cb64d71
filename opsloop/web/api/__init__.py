"""The JSON API: one router per resource, each route reading the request, calling the service
façade and shaping the answer. Ingest, tracking and health endpoints live here too; the browser
UI is in opsloop/web/pages/."""
