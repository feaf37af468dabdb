"""The one place that maps errors to HTTP statuses and a body with a machine code and a human sentence."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.medication_safety import CheckerUnavailableError
from domain.webhooks import GatewayNotConfiguredError, UnverifiedWebhookError
from domain.shared import (
    AuthenticationError,
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidInputError,
    GoneError,
    NotFoundError,
    RateLimitedError,
)
from infrastructure.eventstore import StoreUnavailableError
from infrastructure.settings import MissingSecretError

log = logging.getLogger("medledger.api")

# Storage that cannot be reached within the bound (MEDLEDGER_STORAGE_TIMEOUT_SECONDS): 503 with Retry-After.
STORAGE_ERRORS: tuple[type[Exception], ...] = (
    StoreUnavailableError,
    StoreOperationalError,
    StoreInterfaceError,
    DBAPIError,
    PoolTimeoutError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    RedisError,
)

STATUS_BY_KIND: list[tuple[type[DomainError], int]] = [
    (UnverifiedWebhookError, 400),
    (GatewayNotConfiguredError, 503),
    (InvalidInputError, 422),
    (AuthenticationError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (GoneError, 410),
    (ConflictError, 409),
    (RateLimitedError, 429),
]


class ReadModelBehindError(Exception):
    """Raised when a query's read model did not reach the requested position in time."""

    def __init__(self, position: int) -> None:
        super().__init__(position)
        self.position = position


def status_of(error: DomainError) -> int:
    return next((status for kind, status in STATUS_BY_KIND if isinstance(error, kind)), 409)


def error_response(error: DomainError) -> JSONResponse:
    status = status_of(error)
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    details = dict(error.details)
    if "field" in details:
        body["errors"] = [{"field": details.pop("field"), "reason": error.message}]
    body.update(details)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(error, RateLimitedError):
        headers = {"Retry-After": str(error.retry_after)}
    return JSONResponse(body, status_code=status, headers=headers)


def _field(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    def domain_error(_request: Request, error: DomainError) -> JSONResponse:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e["loc"]), "reason": e["msg"]} for e in error.errors()]
        return JSONResponse(
            {"code": "invalid_request", "message": "The request is not valid; see errors.", "errors": errors},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # a body that cannot be read (not UTF-8, a broken form): invalid input like any other
            unreadable = {"field": "body", "reason": str(error.detail)}
            body = {"code": "invalid_request", "message": "The request body cannot be read.", "errors": [unreadable]}
            return JSONResponse(body, status_code=422)
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse({"code": code, "message": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(ReadModelBehindError)
    def read_model_behind(_request: Request, error: ReadModelBehindError) -> JSONResponse:
        return JSONResponse(
            {
                "code": "read_model_behind",
                "message": f"The read model has not yet reached position {error.position}; retry shortly.",
            },
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(CheckerUnavailableError)
    def checker_unavailable(_request: Request, error: CheckerUnavailableError) -> JSONResponse:
        log.error("medication safety checker unavailable: %s", error)
        return JSONResponse(
            {"code": error.code, "message": f"{error.message} Nothing was recorded; the prescription stays as it was."},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(DataError)
    def invalid_value(_request: Request, _error: DataError) -> JSONResponse:
        return JSONResponse(
            {"code": "invalid_value", "message": "A value in the request cannot be stored or searched for."},
            status_code=422,
        )

    def unavailable(_request: Request, error: Exception) -> JSONResponse:
        log.error("storage unavailable: %s", error)
        return JSONResponse(
            {"code": "service_unavailable", "message": "Storage is unavailable; retry shortly."},
            status_code=503,
            headers={"Retry-After": "1"},
        )

    for kind in (*STORAGE_ERRORS, MissingSecretError):
        app.add_exception_handler(kind, unavailable)
