"""One JSON log line and one latency observation per request; never a token, a query string or a body."""

from __future__ import annotations

import logging
import sys
import time

from pythonjsonlogger.json import JsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.metrics import observe_request

REQUEST_LOG = "medledger.requests"
UNMATCHED = "unmatched"

log = logging.getLogger(REQUEST_LOG)


def configure_request_log() -> None:
    """Request lines go to stdout as JSON, once per process however many apps are built."""
    if any(getattr(handler, "medledger", False) for handler in log.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
        )
    )
    handler.medledger = True  # type: ignore[attr-defined]
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


def route_of(scope: Scope) -> str:
    """The route's template (/patients/{patient_id}), never the path: paths and queries may carry identifying values."""
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


class RequestLogMiddleware:
    """Logs method, route template, status, latency, correlation id and user id of every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - began
            route, state = route_of(scope), scope.get("state", {})
            observe_request(route, scope["method"], status, seconds)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 2),
                    "correlation_id": state.get("correlation_id"),
                    "user_id": state.get("user_id"),
                },
            )
