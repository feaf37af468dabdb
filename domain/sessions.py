"""Session: one login's family of refresh tokens, rotated on use and revoked on reuse or logout."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import register_topic

from domain.accounts import Account
from domain.shared import AuthenticationError, Cause, Role


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

    @event("Started", topic="medledger:Session.Started.v2")
    def __init__(
        self, account_id: str, account_epoch: int, token_id: str, expires_at: datetime, cause: dict[str, Any]
    ) -> None:
        self.account_id = account_id
        self.account_epoch = account_epoch
        self.token_id = token_id
        self.expires_at = expires_at
        self.revoked_reason: str | None = None

    @classmethod
    def start(cls, account: Account, token_id: str, expires_at: datetime, cause: Cause) -> Session:
        """A session belongs to the account's current epoch: disabling the account ends the epoch."""
        return cls(
            account_id=str(account.id),
            account_epoch=account.session_epoch,
            token_id=token_id,
            expires_at=expires_at,
            cause=cause.as_dict(),
        )

    def check_live(self, account: Account) -> None:
        """Raises SessionRevokedError unless this session may still act for its account as the account is now."""
        if self.revoked:
            raise SessionRevokedError("This session has been revoked; log in again.")
        if self.account_id != str(account.id) or self.account_epoch != account.session_epoch:
            raise SessionRevokedError("This session ended when its account was disabled; log in again.")

    def check_grants(self, account: Account, account_id: str, role: Role, profile_id: str | None) -> None:
        """Raises SessionRevokedError unless an access token's identity is this live session's, with the account's
        current role and profile, and the account is enabled."""
        self.check_live(account)
        if account_id != self.account_id or account.disabled or role != account.role or profile_id != account.profile_id:
            raise SessionRevokedError("This session has been revoked or its account disabled or changed.")

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


class _StartedV1(Session.Started):
    """Sessions recorded before a session knew its account's epoch: they belong to the account's first one."""

    TOPIC = "medledger:Session.Started.v1"
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["account_epoch"] = 0


register_topic(_StartedV1.TOPIC, _StartedV1)
