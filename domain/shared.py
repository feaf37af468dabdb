"""Identifiers, the cause of a change, time helpers and the base of every domain error."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

NAMESPACE = UUID("6f1d5c1e-2b7a-4f0e-9a57-3d0c5b8e4a11")


def stable_id(*parts: object) -> UUID:
    """An id that is the same every time for the same parts (one stream per natural key)."""
    return uuid5(NAMESPACE, "/".join(str(part) for part in parts))


class Role(StrEnum):
    PATIENT = "patient"
    DOCTOR = "doctor"
    ADMIN = "admin"
    AUDITOR = "auditor"
    ANALYST = "analyst"


@dataclass(frozen=True)
class Cause:
    """Who asked for a change, in which role, under which request."""

    user_id: str
    role: Role
    correlation_id: str

    def as_dict(self) -> dict[str, str]:
        return {"user_id": str(self.user_id), "role": str(self.role), "correlation_id": str(self.correlation_id)}


SYSTEM = Cause(user_id="system", role=Role.ADMIN, correlation_id="system")


def require_aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInputError(f"{field} must carry a time zone offset.", field=field)
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidInputError(f"{field} is outside the calendar.", field=field) from None


def utc_days(start: datetime, end: datetime) -> list[date]:
    """The UTC dates an interval [start, end) touches."""
    first = start.astimezone(timezone.utc).date()
    last = (end.astimezone(timezone.utc) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    return a_start < b_end and b_start < a_end


def changed_fields(current: dict[str, Any], changes: dict[str, Any], required: frozenset[str]) -> dict[str, Any]:
    """The changes that differ from the current profile; refuses to clear a required field."""
    for name in sorted(required & changes.keys()):
        if changes[name] in (None, ""):
            raise InvalidInputError(f"{name} is required and cannot be cleared.", field=name)
    return {k: v for k, v in changes.items() if current.get(k) != v}


class DomainError(Exception):
    """Raised when a command would break a rule of the clinic."""

    code = "rule_violated"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class RateLimitedError(DomainError):
    """Raised when a caller must wait before trying again (HTTP 429 with Retry-After)."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float, **details: Any) -> None:
        super().__init__(message, retry_after=max(1, math.ceil(retry_after)), **details)

    @property
    def retry_after(self) -> int:
        return self.details["retry_after"]


class InvalidInputError(DomainError):
    """Raised when a value can never be acceptable, whatever the state (HTTP 422)."""

    code = "invalid_input"


class ConflictError(DomainError):
    """Raised when a command clashes with the current state of a record (HTTP 409)."""

    code = "conflict"


class NotFoundError(DomainError):
    """Raised when a record does not exist or may not be known to the caller (HTTP 404)."""

    code = "not_found"


class GoneError(DomainError):
    """Raised when a record existed but its content is gone for ever (HTTP 410): its patient's data was erased."""

    code = "gone"


class ForbiddenError(DomainError):
    """Raised when the caller is known but may not do this (HTTP 403)."""

    code = "forbidden"


class AuthenticationError(DomainError):
    """Raised when the caller's identity cannot be established (HTTP 401)."""

    code = "not_authenticated"


class InvalidTransitionError(ConflictError):
    """Raised when a record's status does not allow the requested change."""

    code = "invalid_transition"
