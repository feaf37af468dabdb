"""Account: a login identity with one role, and its lifecycle."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.shared import AuthenticationError, Cause, ConflictError, ForbiddenError, Role, stable_id

STAFF_ROLES = frozenset({Role.ADMIN, Role.AUDITOR, Role.ANALYST})


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

    def check_enabled(self) -> None:
        if self.disabled:
            raise AccountDisabledError("This account is disabled.")

    @event("Disabled", topic="medledger:Account.Disabled.v1")
    def _disabled(self, reason: str, cause: dict[str, Any]) -> None:
        self.disabled = True

    @event("Enabled", topic="medledger:Account.Enabled.v1")
    def _enabled(self, reason: str, cause: dict[str, Any]) -> None:
        self.disabled = False

    @event("RoleChanged", topic="medledger:Account.RoleChanged.v1")
    def _role_changed(self, role: str, reason: str, cause: dict[str, Any]) -> None:
        self.role = Role(role)

    @event("PasswordChanged", topic="medledger:Account.PasswordChanged.v1")
    def _password_changed(self, password_hash: str, cause: dict[str, Any]) -> None:
        self.password_hash = password_hash
