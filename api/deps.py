"""Request dependencies: the system, the caller, correlation ids, read-your-writes, pages and idempotent commands."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import asdict, replace
from typing import Annotated, Any
from uuid import uuid4

import anyio
import anyio.to_thread
from fastapi import Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import STORAGE_ERRORS, ReadModelBehindError, error_response
from commands.accounts import check_access
from commands.base import Actor, ConcurrentUpdateError, Outcome
from domain.attachments import AttachmentTooLargeError
from domain.shared import AuthenticationError, DomainError, RateLimitedError
from infrastructure.bootstrap import Medledger
from infrastructure.security import AccessClaims
from infrastructure.metrics import count_command, count_read_wait_timeout

log = logging.getLogger("medledger.api")

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class CorrelationIdMiddleware:
    """Takes the caller's X-Correlation-ID (or makes one), exposes it to handlers and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == CORRELATION_HEADER.encode()), "")
        correlation_id = given if _CORRELATION_PATTERN.match(given) else uuid4().hex
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((CORRELATION_HEADER.encode(), correlation_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_header)


MULTIPART_ALLOWANCE = 16 * 1024


class UploadLimitMiddleware:
    """Refuses an attachment upload whose declared length is over the limit before its body is read, so a
    client cannot make the server spool a huge file only to refuse it; the route checks the file itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].endswith("/attachments"):
            declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
            limit = scope["app"].state.medledger.settings.attachment_max_bytes
            if declared.isdigit() and int(declared) > limit + MULTIPART_ALLOWANCE:
                refusal = AttachmentTooLargeError(f"An attachment is at most {limit} bytes.", field="file", limit=limit)
                await error_response(refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def get_medledger(request: Request) -> Medledger:
    return request.app.state.medledger


MedledgerDep = Annotated[Medledger, Depends(get_medledger)]


async def correlation_id(request: Request) -> str:
    return request.state.correlation_id


CorrelationId = Annotated[str, Depends(correlation_id)]

_bearer = HTTPBearer(auto_error=False, description="Access token from /auth/login")


WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def current_claims(
    m: MedledgerDep, request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> AccessClaims:
    """The verified token of a session the event store still lets act; a write also counts against the user's limit."""
    if credentials is None:
        raise AuthenticationError("A bearer access token is required.")
    claims = m.tokens.access_claims(credentials.credentials)
    await run_in_threadpool(check_access, m.store, claims)
    if request.method in WRITE_METHODS:
        wait = await m.write_limits.take(claims.account_id)
        if wait is not None:
            raise RateLimitedError("Too many changes in a short time; slow down.", retry_after=wait)
    request.state.user_id = claims.account_id
    return claims


CurrentClaims = Annotated[AccessClaims, Depends(current_claims)]


async def current_actor(claims: CurrentClaims, correlation: CorrelationId) -> Actor:
    return Actor(claims.account_id, claims.role, claims.profile_id, correlation)


CurrentActor = Annotated[Actor, Depends(current_actor)]


class Pagination(BaseModel):
    page: int
    page_size: int


async def pagination(
    page: Annotated[int, Query(ge=1, le=100_000, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=100, description="Items per page")] = 20,
) -> Pagination:
    return Pagination(page=page, page_size=page_size)


Paging = Annotated[Pagination, Depends(pagination)]

After = Annotated[
    int | None,
    Query(ge=0, description="Wait until the read model has applied the log up to this position (from a command's response)."),
]


def read_models(names: Collection[str]) -> Callable[..., AsyncIterator[Connection]]:
    """A read connection, after waiting (bounded, holding no thread) for the named read models to reach ?after=."""
    wanted = frozenset(names)

    async def caught_up(m: MedledgerDep, after: After = None) -> None:
        if after and not await m.progress.wait(wanted, after, m.settings.read_wait_seconds):
            count_read_wait_timeout()
            raise ReadModelBehindError(after)

    async def dependency(request: Request, m: MedledgerDep, _waited: None = Depends(caught_up)) -> AsyncIterator[Connection]:
        gate, release = _read_gates(request, m)
        async with gate:
            conn = await anyio.to_thread.run_sync(m.read_engine.connect)
            try:
                yield conn
            finally:
                await anyio.to_thread.run_sync(_give_back, conn, limiter=release)

    return dependency


def _give_back(conn: Connection) -> None:
    """Returns the connection to the pool; one that broke meanwhile is discarded, and the answer stands."""
    try:
        conn.close()
    except DBAPIError as error:
        log.warning("discarded a broken read connection: %s", error)


def _read_gates(request: Request, m: Medledger) -> tuple[anyio.CapacityLimiter, anyio.CapacityLimiter]:
    """At most as many requests as the pool has connections go for one, and giving one back never waits for a
    worker thread: hundreds of requests released at once would otherwise take every thread waiting for a
    connection while the requests holding them wait for a thread to give them back."""
    state = request.app.state
    if not hasattr(state, "read_gates"):
        slots = 2 * m.settings.pool_size
        state.read_gates = (anyio.CapacityLimiter(slots), anyio.CapacityLimiter(slots))
    return state.read_gates


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Repeat a command safely: the same key and body return the first answer.",
    ),
]


def outcome_body(outcome: Outcome) -> dict[str, Any]:
    """The outcome's fields but `created` (which the status code says): id, position and any a command adds."""
    return {name: value for name, value in asdict(outcome).items() if name != "created"}


def with_position(m: Medledger, outcome: Outcome) -> Outcome:
    """A command that changed nothing answers the log's end: the state it describes is recorded at or before it."""
    return outcome if outcome.position is not None else replace(outcome, position=m.store.max_position())


def run_command(
    m: Medledger,
    request: Request,
    caller: str,
    key: str | None,
    payload: BaseModel | None,
    command: Callable[[], Outcome],
    status_code: int = 200,
) -> Response:
    """Runs a command once per Idempotency-Key; a repeat with the same body gets the first answer.

    Every answer carries a position to pass as ?after=, also when the command found its work already done.
    """
    name = f"{request.method} {getattr(request.scope.get('route'), 'path', request.url.path)}"

    def answer() -> JSONResponse:
        try:
            outcome = with_position(m, command())
        except ConcurrentUpdateError as error:
            count_command(name, error.code)
            raise
        except DomainError as error:
            count_command(name, error.code)
            return error_response(error)
        except STORAGE_ERRORS:
            count_command(name, "service_unavailable")
            raise
        count_command(name, "ok")
        created = status_code == 201 and outcome.created
        return JSONResponse(outcome_body(outcome), status_code=201 if created else 200)

    if key is None:
        return answer()
    scope = f"{caller}:{request.method}:{request.url.path}:{key}"
    body = payload.model_dump(mode="json") if payload is not None else None
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    stored = m.idempotency.claim(scope, fingerprint)
    if stored is not None:
        count_command(name, "replayed")
        return Response(
            stored.body, status_code=stored.status_code, media_type="application/json", headers={"Idempotent-Replayed": "true"}
        )
    try:
        response = answer()
    except ConcurrentUpdateError as error:
        m.idempotency.release(scope)  # a busy record is worth retrying under the same key
        return error_response(error)
    except BaseException:
        m.idempotency.release(scope)
        raise
    m.idempotency.record(scope, response.status_code, bytes(response.body).decode())
    return response


def run_handler(
    m: Medledger,
    request: Request,
    actor: Actor,
    key: str | None,
    body: BaseModel | None,
    handler: Callable[[Any, Any, Actor], Outcome],
    cmd: Any,
    status_code: int = 200,
) -> Response:
    """run_command for the usual handler(services, command, actor)."""
    return run_command(m, request, actor.account_id, key, body, lambda: handler(m.services, cmd, actor), status_code)
