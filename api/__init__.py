"""The HTTP API: routers per resource that translate requests into commands and queries."""
