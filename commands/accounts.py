"""Account commands: registration, staff accounts, disabling, login, token refresh and logout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4

from commands.base import Actor, Outcome, Services, Store, change, load, require, retrying
from domain.accounts import Account, EmailTakenError, InvalidCredentialsError, Lockout, TooManyLoginAttemptsError
from domain.doctors import Doctor
from domain.patients import Patient
from domain.sessions import RefreshTokenReusedError, Session, SessionRevokedError
from domain.shared import Cause, InvalidInputError, Role


@dataclass(frozen=True)
class RegisterPatient:
    email: str
    password: str
    profile: dict[str, Any]


@dataclass(frozen=True)
class CreateAccount:
    email: str
    password: str
    role: Role
    profile: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DisableAccount:
    account_id: str
    reason: str


@dataclass(frozen=True)
class EnableAccount:
    account_id: str
    reason: str


@dataclass(frozen=True)
class ChangeRole:
    account_id: str
    role: Role
    reason: str


@dataclass(frozen=True)
class LogIn:
    email: str
    password: str
    address: str = "unknown"


@dataclass(frozen=True)
class UnlockAccount:
    account_id: str
    reason: str


@dataclass(frozen=True)
class RefreshSession:
    session_id: str
    token_id: str


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says: whose session it is, in which role."""

    account_id: str
    role: Role
    profile_id: str | None
    session_id: str


@dataclass(frozen=True)
class Grant:
    """A successful login or refresh: the material the token issuer signs."""

    account_id: str
    role: Role
    profile_id: str | None
    session_id: str
    refresh_token_id: str
    refresh_expires_at: datetime
    position: int | None


def register_patient(svc: Services, cmd: RegisterPatient, correlation_id: str) -> Outcome:
    account_id = str(Account.create_id(cmd.email))
    cause = Cause(user_id=account_id, role=Role.PATIENT, correlation_id=correlation_id)
    return _open_account(svc, CreateAccount(cmd.email, cmd.password, Role.PATIENT, cmd.profile), cause)


def create_account(svc: Services, cmd: CreateAccount, actor: Actor) -> Outcome:
    require(actor.is_(Role.ADMIN), "Only an admin creates accounts for others.")
    return _open_account(svc, cmd, actor.cause)


def _open_account(svc: Services, cmd: CreateAccount, cause: Cause) -> Outcome:
    store, email, role, profile = svc.store, cmd.email, cmd.role, cmd.profile
    if role in (Role.PATIENT, Role.DOCTOR) and not profile:
        raise InvalidInputError(f"A {role.value} account needs a profile.", field="profile")
    password_hash = svc.hasher.hash(cmd.password)

    def decide() -> Outcome:
        account_id = Account.create_id(email)
        if store.find(Account, account_id) is not None:
            raise EmailTakenError("An account already exists for this email address.")
        record: Doctor | Patient | None = None
        if role == Role.DOCTOR:
            record = Doctor(account_id=str(account_id), profile=profile, cause=cause.as_dict())
        elif role == Role.PATIENT:
            record = Patient(account_id=str(account_id), profile=profile, cause=cause.as_dict())
        account = Account(
            email=email,
            password_hash=password_hash,
            role=role.value,
            profile_id=str(record.id) if record else None,
            cause=cause.as_dict(),
        )
        return Outcome(str(account.id), store.save(account, record), created=True)

    return retrying(store, decide)


def _account(svc: Services, account_id: str) -> Callable[[], Account]:
    return lambda: load(svc.store, Account, account_id, "account")


def disable_account(svc: Services, cmd: DisableAccount, actor: Actor) -> Outcome:
    require(actor.is_(Role.ADMIN), "Only an admin disables accounts.")
    require(cmd.account_id != actor.account_id, "An admin cannot disable their own account.")
    return change(svc.store, _account(svc, cmd.account_id), lambda a: a.disable(cmd.reason, actor.cause))


def enable_account(svc: Services, cmd: EnableAccount, actor: Actor) -> Outcome:
    require(actor.is_(Role.ADMIN), "Only an admin enables accounts.")
    return change(svc.store, _account(svc, cmd.account_id), lambda a: a.enable(cmd.reason, actor.cause))


def change_role(svc: Services, cmd: ChangeRole, actor: Actor) -> Outcome:
    require(actor.is_(Role.ADMIN), "Only an admin changes roles.")
    return change(svc.store, _account(svc, cmd.account_id), lambda a: a.change_role(cmd.role, cmd.reason, actor.cause))


def unlock_account(svc: Services, cmd: UnlockAccount, actor: Actor) -> Outcome:
    require(actor.is_(Role.ADMIN), "Only an admin lifts a login lockout.")
    outcome = change(svc.store, _account(svc, cmd.account_id), lambda a: a.unlock(cmd.reason, actor.cause))
    svc.login_attempts.forget(outcome.id)
    return outcome


def log_in(svc: Services, cmd: LogIn, correlation_id: str) -> Grant:
    """Checks the password unless the email or the address must wait; never tells whether the email exists."""
    attempts, now = svc.login_attempts, svc.clock()
    address_wait = attempts.address_retry_after(cmd.address)
    if address_wait is not None:
        raise TooManyLoginAttemptsError("Too many failed logins; try again later.", retry_after=address_wait)
    identity = str(Account.create_id(cmd.email))
    account = svc.store.find(Account, identity)
    (account.lockout if account is not None else attempts.lockout(identity)).check(now)
    if account is None:
        svc.hasher.verify_unknown(cmd.password)
    if account is None or not svc.hasher.verify(account.password_hash, cmd.password):
        _count_failure(svc, identity, account, cmd.address, now, correlation_id)
        raise InvalidCredentialsError("Wrong email or password.")
    account.check_enabled()
    cause = Cause(user_id=str(account.id), role=account.role, correlation_id=correlation_id)
    if account.lockout != Lockout():
        change(svc.store, _account(svc, identity), lambda a: a.unlock("logged in", cause))
    token_id = uuid4().hex
    expires_at = svc.clock() + svc.refresh_lifetime
    session = Session.start(account, token_id, expires_at, cause)
    position = svc.store.save(session)
    attempts.forget(identity)
    return Grant(str(account.id), account.role, account.profile_id, str(session.id), token_id, expires_at, position)


def _count_failure(
    svc: Services, identity: str, account: Account | None, address: str, now: datetime, correlation_id: str
) -> None:
    """Counts a wrong password; at the policy's limit, locks the account (an event) or the unknown email alike."""
    failures = svc.login_attempts.failed(identity, address)
    policy = svc.login_policy
    if failures < policy.max_failures:
        return
    if account is None:
        svc.login_attempts.hold(identity, svc.login_attempts.lockout(identity).following(now, policy.lockouts), now)
    else:
        cause = Cause(user_id=identity, role=account.role, correlation_id=correlation_id)
        change(svc.store, _account(svc, identity), lambda a: a.lock_out(now, failures, address, policy.lockouts, cause))
    svc.login_attempts.forget(identity)


def refresh_session(svc: Services, cmd: RefreshSession, correlation_id: str) -> Grant:
    store, clock = svc.store, svc.clock

    def decide() -> Grant:
        session = store.find(Session, cmd.session_id)
        if session is None:
            raise SessionRevokedError("This session does not exist; log in again.")
        account = store.find(Account, session.account_id)
        if account is None:
            raise SessionRevokedError("This session's account does not exist; log in again.")
        account.check_enabled()
        session.check_live(account)
        cause = Cause(user_id=str(account.id), role=account.role, correlation_id=correlation_id)
        token_id = uuid4().hex
        expires_at = clock() + svc.refresh_lifetime
        if not session.rotate(cmd.token_id, token_id, expires_at, clock(), cause):
            store.save(session)
            raise RefreshTokenReusedError("This refresh token was already used; the session is revoked.")
        position = store.save(session)
        return Grant(str(account.id), account.role, account.profile_id, str(session.id), token_id, expires_at, position)

    return retrying(store, decide)


def log_out(svc: Services, session_id: str, actor: Actor) -> Outcome:
    session = lambda: load(svc.store, Session, session_id, "session")  # noqa: E731
    return change(svc.store, session, lambda s: s.revoke("logout", actor.cause))


def check_access(store: Store, claims: AccessClaims) -> None:
    """Raises SessionRevokedError unless the token's session and account, as the store records them now, let it act.

    Both streams are read at their latest recorded version on every request (in one round trip), so a revocation,
    a disabling or a role change recorded by any process is seen at once, and there is nothing else to forget.
    The account read is the token's; the session must belong to it.
    """
    session, account = store.find_all((Session, claims.session_id), (Account, claims.account_id))
    if session is None:
        raise SessionRevokedError("This session does not exist; log in again.")
    if account is None:
        raise SessionRevokedError("This session's account does not exist; log in again.")
    session.check_grants(account, claims.account_id, claims.role, claims.profile_id)
