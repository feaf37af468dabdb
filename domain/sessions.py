"""Session: one login's family of refresh tokens, rotated on use and revoked on reuse or logout."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.shared import AuthenticationError, Cause


class SessionRevokedError(AuthenticationError):
    """Raised when a token of a revoked session is presented."""

    code = "session_revoked"


class SessionExpiredError(AuthenticationError):
    """Raised when a refresh token is presented after its session expired."""

    code = "session_expired"


class RefreshTokenReusedError(AuthenticationError):
    """Raised when a refresh token that was already rotated is presented again."""

    code = "refresh_token_reused"


class Session(Aggregate):
    TOPIC = "medledger:Session"

    class Created(Aggregate.Created):
        TOPIC = "medledger:Session.Created"

    @event("Started", topic="medledger:Session.Started.v1")
    def __init__(self, account_id: str, token_id: str, expires_at: datetime, cause: dict[str, Any]) -> None:
        self.account_id = account_id
        self.token_id = token_id
        self.expires_at = expires_at
        self.revoked_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_reason is not None

    def rotate(self, presented_token_id: str, new_token_id: str, expires_at: datetime, now: datetime, cause: Cause) -> bool:
        """Rotates the refresh token; on reuse of an old token, revokes the family and answers False."""
        if self.revoked:
            raise SessionRevokedError("This session has been revoked; log in again.")
        if now >= self.expires_at:
            raise SessionExpiredError("This session has expired; log in again.")
        if presented_token_id != self.token_id:
            self._revoked("refresh token reused", cause.as_dict())
            return False
        self._rotated(new_token_id, expires_at, cause.as_dict())
        return True

    def revoke(self, reason: str, cause: Cause) -> None:
        if not self.revoked:
            self._revoked(reason, cause.as_dict())

    @event("Rotated", topic="medledger:Session.Rotated.v1")
    def _rotated(self, token_id: str, expires_at: datetime, cause: dict[str, Any]) -> None:
        self.token_id = token_id
        self.expires_at = expires_at

    @event("Revoked", topic="medledger:Session.Revoked.v1")
    def _revoked(self, reason: str, cause: dict[str, Any]) -> None:
        self.revoked_reason = reason
