"""Given / when / then helpers for the domain unit tests: a fixed actor and clock, event names, replay."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, TypeVar

import pytest
from eventsourcing.domain import Aggregate

from domain.doctors import WeeklyAvailability
from domain.shared import Cause, Role
from infrastructure.eventstore import Clinic

A = TypeVar("A", bound=Aggregate)

CAUSE = Cause("user-1", Role.ADMIN, "corr-1")
CAUSE_DICT = {"user_id": "user-1", "role": "admin", "correlation_id": "corr-1"}

MONDAY = date(2025, 6, 2)
SUNDAY_BEFORE = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=timezone.utc)


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def paris_weekdays(slot_minutes: int = 30) -> WeeklyAvailability:
    """Mon-Fri 09:00-12:00 and 14:00-17:00 in Paris: in June, 07:00-10:00Z and 12:00-15:00Z."""
    day = ((time(9), time(12)), (time(14), time(17)))
    return WeeklyAvailability("Europe/Paris", slot_minutes, {d: day for d in ("mon", "tue", "wed", "thu", "fri")})


def given(aggregate: A) -> A:
    """The aggregate with its history collected, so that a test sees only what the command emits."""
    aggregate.collect_events()
    return aggregate


def names(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def emitted(aggregate: Aggregate) -> list[str]:
    return names(aggregate.collect_events())


@contextmanager
def refused(error: type[BaseException], *aggregates: Aggregate) -> Iterator[pytest.ExceptionInfo[Any]]:
    """Expects the error, and that none of the aggregates emitted an event or changed version."""
    versions = [a.version for a in aggregates]
    with pytest.raises(error) as info:
        yield info
    assert [a.collect_events() for a in aggregates] == [[] for _ in aggregates]
    assert [a.version for a in aggregates] == versions


def state(aggregate: Aggregate) -> dict[str, Any]:
    """The aggregate's own attributes, without the library's bookkeeping."""
    return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}


def replayed(aggregate: A) -> A:
    """The aggregate rebuilt from its events after a trip through the production transcoder and a store."""
    store = Clinic(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    store.save(aggregate)
    return store.repository.get(aggregate.id)
