"""What every handler needs: the ports it is given, the actor asking, retries and a command's outcome."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from domain.accounts import Lockout
from domain.medication_safety import InteractionTable
from domain.shared import Cause, ConflictError, ForbiddenError, NotFoundError, Role

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")

RETRY_PATIENCE_SECONDS = 5.0


class Store(Protocol):
    def find(self, cls: type[A], aggregate_id: UUID | str) -> A | None:
        """A private copy of the aggregate at its latest recorded version, or None."""
        ...

    def find_all(self, *wanted: tuple[type[Aggregate], UUID | str]) -> list[Any]:
        """Like find for several aggregates at once (one round trip)."""
        ...

    def save(self, *aggregates: Aggregate | None) -> int | None:
        """Records the new events of the aggregates atomically; IntegrityError when one moved on since it was read."""
        ...

    def save_soon(self, *aggregates: Aggregate | None) -> Callable[[], int | None]:
        """Starts recording like save and answers a wait for the outcome (what save answers or raises)."""
        ...

    def taking_turns(self, streams: Iterable[UUID]) -> AbstractContextManager[None]:
        """Holds the streams for one decision: other commands of this process holding them wait their turn."""
        ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def verify_unknown(self, password: str) -> None:
        """Spends the time of a verification, so an unknown email answers as slowly as a wrong password."""


class LoginAttempts(Protocol):
    """Failed logins in a sliding window, per login identity and per client address, and the lockouts of
    identities that are no account (an account's own lockouts are events on its stream)."""

    def address_retry_after(self, address: str) -> float | None:
        """Seconds until this address may try again, or None if it is under its limit."""
        ...

    def failed(self, identity: str, address: str) -> int:
        """Records a failed login; answers the identity's failures in the window, this one included."""
        ...

    def forget(self, identity: str) -> None:
        """Clears the identity's failures (after a lockout, a successful login or an admin's unlock)."""
        ...

    def lockout(self, identity: str) -> Lockout: ...

    def hold(self, identity: str, lockout: Lockout, now: datetime) -> None: ...


@dataclass(frozen=True)
class LoginPolicy:
    """How many wrong passwords for one identity lock its logins, and for how long each lockout in a row lasts."""

    max_failures: int
    lockouts: tuple[timedelta, ...]


class Eraser(Protocol):
    """Carries out an approved erasure: the patient's data key, attachments and cached answers go for ever."""

    def erase(self, patient_id: str) -> None: ...

    def erased(self, patient_id: str) -> bool:
        """Whether the patient's data key is destroyed."""
        ...


class Blobs(Protocol):
    """A patient's attachment bytes, addressed by their content."""

    def put(self, content: bytes, patient_id: str) -> str:
        """Stores the patient's bytes; answers their SHA-256 (hex), which is their key."""
        ...

    def get(self, sha256: str, patient_id: str) -> bytes:
        """The bytes under this key, re-hashed; AttachmentIntegrityError if they are missing or do not match."""
        ...

    def erase(self, patient_id: str) -> int:
        """Deletes every attachment of the patient; answers how many."""
        ...


class InteractionTables(Protocol):
    """The drug interaction table in force."""

    def current(self) -> InteractionTable:
        """The table; raises CheckerUnavailableError when it cannot be read or is malformed."""
        ...


class PrescriptionIndex(Protocol):
    """Which prescriptions a sweep (expiry, re-check) should look at; each is then decided on its aggregate."""

    def active(self) -> list[str]:
        """Ids of prescriptions that are issued or partially dispensed, or drafts that may have been issued since."""
        ...


Clock = Callable[[], datetime]


@dataclass(frozen=True)
class BillingPolicy:
    """The clinic's billing settings, wired once at start-up."""

    clinic: str = "main"
    currency: str = "EUR"
    timezone: str = "UTC"
    payment_terms: timedelta = timedelta(days=30)
    no_show_fee: Decimal | None = None

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(ZoneInfo(self.timezone)).date()


@dataclass(frozen=True)
class Services:
    """The ports and policies handlers are given, wired once at start-up."""

    store: Store
    clock: Clock
    hasher: PasswordHasher
    login_attempts: LoginAttempts
    login_policy: LoginPolicy
    patient_cutoff: timedelta
    refresh_lifetime: timedelta
    post_visit_access: timedelta
    interactions: InteractionTables
    prescriptions: PrescriptionIndex
    prescription_validity: timedelta
    blobs: Blobs
    eraser: Eraser
    billing: BillingPolicy = BillingPolicy()


@dataclass(frozen=True)
class Actor:
    """The authenticated caller of a command."""

    account_id: str
    role: Role
    profile_id: str | None
    correlation_id: str

    @property
    def cause(self) -> Cause:
        return Cause(user_id=self.account_id, role=self.role, correlation_id=self.correlation_id)

    def is_(self, *roles: Role) -> bool:
        return self.role in roles

    def owns(self, role: Role, profile_id: str) -> bool:
        return self.role == role and self.profile_id == profile_id


@dataclass(frozen=True)
class Outcome:
    """What a command did: the record it concerns and the log position read models must reach."""

    id: str
    position: int | None
    created: bool = False


class ConcurrentUpdateError(ConflictError):
    """Raised when a record kept changing under a command through every retry."""

    code = "concurrent_update"


class RecordNotFoundError(NotFoundError):
    """Raised when a record does not exist, or the caller may not know that it does."""


def load(store: Store, cls: type[A], aggregate_id: UUID | str, what: str) -> A:
    aggregate = store.find(cls, aggregate_id)
    if aggregate is None:
        raise RecordNotFoundError(f"No {what} {aggregate_id}.")
    return aggregate


def load_or_open(store: Store, cls: type[A], aggregate_id: UUID, **opening: object) -> A:
    """Loads a per-day stream, or opens it on its first use."""
    (aggregate,) = load_or_open_all(store, (cls, aggregate_id, opening))
    return aggregate


Opening = tuple[type[Aggregate], UUID, dict[str, object]]


def load_or_open_all(store: Store, *streams: Opening) -> list[Any]:
    """Loads several such streams in one round trip, opening those used for the first time."""
    found = store.find_all(*((cls, aggregate_id) for cls, aggregate_id, _ in streams))
    return [aggregate if aggregate is not None else cls(**opening) for aggregate, (cls, _, opening) in zip(found, streams)]


def require(allowed: bool, message: str) -> None:
    if not allowed:
        raise ForbiddenError(message)


def change(store: Store, load_one: Callable[[], A], act: Callable[[A], None], answer_id: str | None = None) -> Outcome:
    """The common command: load one aggregate, apply one change, save it; retried when it loses a race."""

    def decide() -> Outcome:
        aggregate = load_one()
        act(aggregate)
        return Outcome(answer_id or str(aggregate.id), store.save(aggregate))

    return retrying(store, decide)


def retrying(store: Store, decide: Callable[[], R], patience: float = RETRY_PATIENCE_SECONDS) -> R:
    """Runs load-decide-save again when the save lost a race; safe because each try reloads the latest state.

    Many commands on one busy stream (a popular doctor's day) each win one commit round in turn,
    so retries are bounded by time rather than by count, with jitter so contenders spread out.
    A command that lost a race on a stream decides again holding its turn on that stream, so commands of this
    process on a contended stream go one after the other rather than all failing but one, each round.
    """
    deadline = time.monotonic() + patience
    attempt = 0
    contended: frozenset[UUID] = frozenset()
    while True:
        try:
            with store.taking_turns(contended):
                return decide()
        except IntegrityError as conflict:
            attempt += 1
            if time.monotonic() >= deadline:
                raise ConcurrentUpdateError("The record kept changing while this command was saved; try again.") from None
            lost_on = getattr(conflict, "streams", frozenset())
            if lost_on <= contended:
                time.sleep(random.uniform(0, min(0.002 * attempt, 0.02)))
            contended |= lost_on
