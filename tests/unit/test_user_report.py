"""What one user did, from given events: their changes as history rows and their reads with what they showed, in
the index's order; who may ask; and what showing it puts in the read log."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate
from test_audit_history import StreamsInMemory

from commands.base import Actor, RecordNotFoundError, Services, Store
from commands.user_report import Action, report_access, user_report
from domain.accounts import Account
from domain.consultation import Consultation
from domain.read_log import ReadRecord, Row, Shown
from domain.shared import Cause, ForbiddenError, InvalidInputError, Role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DOCTOR = Cause("doctor-account", Role.DOCTOR, "corr-d")
AUDITOR = Actor("auditor-account", Role.AUDITOR, None, "corr-a")
ADMIN = Actor("admin-account", Role.ADMIN, None, "corr-b")


class StoreOfAccounts(Store):
    """The store's port as the report uses it: accounts to find, and the read log entries it records."""

    def __init__(self, *accounts: Aggregate) -> None:
        self.accounts = {str(a.id): a for a in accounts}
        self.recorded: list[Aggregate] = []

    def find(self, cls: Any, aggregate_id: Any) -> Any:
        return self.accounts.get(str(aggregate_id))

    def save_soon(self, *aggregates: Aggregate | None) -> Callable[[], int | None]:
        self.recorded += [a for a in aggregates if a is not None]
        return lambda: None


def services(store: Store) -> Services:
    unused: Any = None
    return Services(store, lambda: T0, unused, unused, unused, timedelta(), timedelta(), timedelta(), unused, unused, timedelta(), unused, unused)


def stamped(events: list[Any], first: int) -> list[Any]:
    return [dataclasses.replace(e, timestamp=T0 + timedelta(minutes=first + n)) for n, e in enumerate(events)]


class Week:
    def __init__(self) -> None:
        self.account = Account(email="d@x.org", password_hash="h", role="doctor", profile_id="doctor-1", cause=DOCTOR.as_dict())
        self.account.collect_events()
        c = Consultation.start(UUID(int=5), "patient-1", "doctor-1", None, "in_person", T0, DOCTOR)
        c.record_complaint("complaint-1", "Chest pain", T0, DOCTOR)
        c.sign(T0, DOCTOR)
        self.consultation = stamped(c.collect_events(), 0)
        read = ReadRecord.of("chart", (Row("patient-1", Shown.CHART, "patient-1", "primary_care"),), T0, DOCTOR)
        self.read = stamped(read.collect_events(), 5)
        self.histories = StreamsInMemory(self.consultation, self.read)
        self.actions = [
            Action(10 + n, str(e.originator_id), e.originator_version, type(e).TOPIC, e.timestamp)
            for n, e in enumerate([*self.consultation, *self.read])
        ]

    def report(self, actor: Actor, actions: list[Action] | None = None) -> tuple[list[dict[str, Any]], StoreOfAccounts]:
        store = StoreOfAccounts(self.account)
        chosen = self.actions if actions is None else actions
        page = user_report(services(store), self.histories, actor, str(self.account.id), chosen, len(chosen), 1, 20)
        return page.items, store


@pytest.fixture
def week() -> Week:
    return Week()


def test_changes_are_history_rows_and_reads_say_what_they_showed_in_the_index_order(week: Week) -> None:
    rows, _ = week.report(AUDITOR)

    assert [(r["kind"], r["event_type"], r["position"]) for r in rows] == [
        ("change", "Consultation.Started", 10),
        ("change", "Consultation.ComplaintRecorded", 11),
        ("change", "Consultation.Signed", 12),
        ("read", "ReadRecord.Recorded", 13),
    ]
    assert {r["actor_user_id"] for r in rows} == {"doctor-account"}
    assert [c["after"] for c in rows[1]["changes"] if c["path"].endswith("current.text")] == ["Chest pain"]
    assert (rows[3]["action"], rows[3]["shown"]) == ("chart", [{"patient_id": "patient-1", "shown": "chart", "record_id": "patient-1", "basis": "primary_care"}])


def test_showing_it_to_an_auditor_is_in_the_read_log_first(week: Week) -> None:
    _, store = week.report(AUDITOR)

    [read] = store.recorded
    assert read.action == "user report" and read.reader["user_id"] == "auditor-account"
    assert set(read.rows) == {
        Row("patient-1", Shown.HISTORY, str(UUID(int=5)), "audit"),
        Row("patient-1", Shown.READ_LOG, str(week.account.id), "audit"),
    }


def test_an_admin_sees_no_clinical_content_and_nothing_is_logged(week: Week) -> None:
    rows, store = week.report(ADMIN, week.actions[:3])

    assert "Chest pain" not in repr(rows) and rows[1]["changes"] == []
    assert store.recorded == []


def test_auditors_and_admins_may_ask_about_accounts_and_the_system_only() -> None:
    account = Account(email="d@x.org", password_hash="h", role="doctor", profile_id="doctor-1", cause=DOCTOR.as_dict())
    svc = services(StoreOfAccounts(account))
    start, end = T0, T0 + timedelta(days=7)

    assert report_access(svc, AUDITOR, str(account.id), start, end) is True
    assert report_access(svc, ADMIN, str(account.id), start, end) is False
    assert report_access(svc, AUDITOR, "system", start, end) is True
    for role in (Role.DOCTOR, Role.PATIENT, Role.ANALYST):
        with pytest.raises(ForbiddenError):
            report_access(svc, Actor("someone", role, "p-1", "c"), str(account.id), start, end)
    with pytest.raises(RecordNotFoundError):
        report_access(svc, AUDITOR, "not-an-account", start, end)
    with pytest.raises(InvalidInputError) as refused:
        report_access(svc, AUDITOR, str(account.id), end, start)
    assert refused.value.details["field"] == "to"
