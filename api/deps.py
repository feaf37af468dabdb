"""Request dependencies: the system, the caller, correlation ids, read-your-writes, pages and idempotent commands."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import asdict
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Connection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ReadModelBehindError, error_response
from commands.base import Actor, ConcurrentUpdateError, Outcome
from domain.attachments import AttachmentTooLargeError
from domain.sessions import SessionRevokedError
from domain.shared import AuthenticationError, DomainError, InvalidInputError
from infrastructure.bootstrap import Medledger
from infrastructure.security import AccessClaims
from projections.queries import wait_for_position

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class UnknownPositionError(InvalidInputError):
    """Raised when ?after= names a position beyond the end of the event log: no command answered it."""

    code = "unknown_position"


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


async def current_claims(
    m: MedledgerDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> AccessClaims:
    if credentials is None:
        raise AuthenticationError("A bearer access token is required.")
    claims = m.tokens.access_claims(credentials.credentials)
    if not await m.revocations.check(claims):
        raise SessionRevokedError("This session has been revoked or its account disabled.")
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


def read_models(names: Collection[str]) -> Callable[..., Iterator[Connection]]:
    """A read connection, after waiting (bounded) for the named read models to reach ?after=."""

    def dependency(m: MedledgerDep, after: After = None) -> Iterator[Connection]:
        if after and not wait_for_position(m.read_engine, names, after, 0):
            if after > m.store.max_position():
                raise UnknownPositionError(f"No write has reached position {after}; the log ends before it.", field="after")
            if not wait_for_position(m.read_engine, names, after, m.settings.read_wait_seconds):
                raise ReadModelBehindError(after)
        with m.read_engine.connect() as conn:
            yield conn

    return dependency


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


def run_command(
    m: Medledger,
    request: Request,
    caller: str,
    key: str | None,
    payload: BaseModel | None,
    command: Callable[[], Outcome],
    status_code: int = 200,
) -> Response:
    """Runs a command once per Idempotency-Key; a repeat with the same body gets the first answer."""

    def answer() -> JSONResponse:
        try:
            outcome = command()
        except ConcurrentUpdateError:
            raise
        except DomainError as error:
            return error_response(error)
        created = status_code == 201 and outcome.created
        return JSONResponse(outcome_body(outcome), status_code=201 if created else 200)

    if key is None:
        return answer()
    scope = f"{caller}:{request.method}:{request.url.path}:{key}"
    body = payload.model_dump(mode="json") if payload is not None else None
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    stored = m.idempotency.claim(scope, fingerprint)
    if stored is not None:
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
