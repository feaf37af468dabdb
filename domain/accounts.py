"""Account: a login identity with one role, and its lifecycle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import AuthenticationError, Cause, ConflictError, ForbiddenError, RateLimitedError, Role, stable_id

STAFF_ROLES = frozenset({Role.ADMIN, Role.AUDITOR, Role.ANALYST})
LOCKOUTS_FORGOTTEN_AFTER = timedelta(hours=24)


class EmailTakenError(ConflictError):
    """Raised when an account already exists for the email address."""

    code = "email_taken"


class InvalidCredentialsError(AuthenticationError):
    """Raised when an email and password do not match an enabled account."""

    code = "invalid_credentials"


class AccountDisabledError(ForbiddenError):
    """Raised when a disabled account tries to act."""

    code = "account_disabled"


class RoleChangeNotAllowedError(ConflictError):
    """Raised when a role change would detach an account from its patient or doctor profile."""

    code = "role_change_not_allowed"


class TooManyLoginAttemptsError(RateLimitedError):
    """Raised when logins for an email, or from a client address, must wait after repeated wrong passwords."""

    code = "too_many_login_attempts"


@dataclass(frozen=True)
class Lockout:
    """Until when logins wait after repeated wrong passwords, and how many lockouts came one after another."""

    until: datetime | None = None
    count: int = 0

    def check(self, now: datetime) -> None:
        if self.until is not None and now < self.until:
            raise TooManyLoginAttemptsError(
                "Too many failed logins; try again later.", retry_after=(self.until - now).total_seconds()
            )

    def following(self, now: datetime, durations: Sequence[timedelta]) -> Lockout:
        """The next lockout: each lasts longer, unless the previous one ended long ago."""
        fresh_start = self.until is None or now - self.until > LOCKOUTS_FORGOTTEN_AFTER
        count = 1 if fresh_start else self.count + 1
        return Lockout(now + durations[min(count, len(durations)) - 1], count)


class Account(Aggregate):
    TOPIC = "medledger:Account"

    class Created(Aggregate.Created):
        TOPIC = "medledger:Account.Created"

    @staticmethod
    def create_id(email: str) -> UUID:
        return stable_id("account", email.strip().lower())

    @event("Registered", topic="medledger:Account.Registered.v1")
    def __init__(
        self, email: str, password_hash: str, role: str, profile_id: str | None, cause: dict[str, Any]
    ) -> None:
        self.email = email.strip().lower()
        self.password_hash = password_hash
        self.role = Role(role)
        self.profile_id = profile_id
        self.disabled = False
        self.session_epoch = 0
        self.lockout = Lockout()

    def disable(self, reason: str, cause: Cause) -> None:
        if not self.disabled:
            self._disabled(reason, cause.as_dict())

    def enable(self, reason: str, cause: Cause) -> None:
        if self.disabled:
            self._enabled(reason, cause.as_dict())

    def change_role(self, role: Role, reason: str, cause: Cause) -> None:
        if role == self.role:
            return
        if self.role not in STAFF_ROLES or role not in STAFF_ROLES:
            raise RoleChangeNotAllowedError(
                "Only staff roles (admin, auditor, analyst) can be exchanged; "
                "patient and doctor accounts are bound to their profile.",
                current={"role": self.role.value},
            )
        self._role_changed(role.value, reason, cause.as_dict())

    def change_password(self, password_hash: str, cause: Cause) -> None:
        self._password_changed(password_hash, cause.as_dict())

    def lock_out(
        self, now: datetime, failures: int, address: str, durations: Sequence[timedelta], cause: Cause
    ) -> None:
        """Locks logins after `failures` wrong passwords; a lock already in force is left as it is."""
        if self.lockout.until is not None and now < self.lockout.until:
            return
        following = self.lockout.following(now, durations)
        self._locked_out(following.until, following.count, failures, address, cause.as_dict())

    def unlock(self, reason: str, cause: Cause) -> None:
        """Lifts a lockout and starts its progression again (an admin, or the holder's successful login)."""
        if self.lockout != Lockout():
            self._unlocked(reason, cause.as_dict())

    def check_enabled(self) -> None:
        if self.disabled:
            raise AccountDisabledError("This account is disabled.")

    @event("Disabled", topic="medledger:Account.Disabled.v1")
    def _disabled(self, reason: str, cause: dict[str, Any]) -> None:
        self.disabled = True
        self.session_epoch += 1  # every session started before this is over, whatever happens next

    @event("Enabled", topic="medledger:Account.Enabled.v1")
    def _enabled(self, reason: str, cause: dict[str, Any]) -> None:
        self.disabled = False

    @event("RoleChanged", topic="medledger:Account.RoleChanged.v1")
    def _role_changed(self, role: str, reason: str, cause: dict[str, Any]) -> None:
        self.role = Role(role)

    @event("PasswordChanged", topic="medledger:Account.PasswordChanged.v1")
    def _password_changed(self, password_hash: str, cause: dict[str, Any]) -> None:
        self.password_hash = password_hash

    @event("LockedOut", topic="medledger:Account.LockedOut.v1")
    def _locked_out(
        self, until: datetime, lockout: int, failures: int, address: str, cause: dict[str, Any]
    ) -> None:
        self.lockout = Lockout(until, lockout)

    @event("Unlocked", topic="medledger:Account.Unlocked.v1")
    def _unlocked(self, reason: str, cause: dict[str, Any]) -> None:
        self.lockout = Lockout()
