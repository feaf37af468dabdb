"""Wiring: settings, the event store, databases, Redis, auth, the CLI and the projector worker."""
