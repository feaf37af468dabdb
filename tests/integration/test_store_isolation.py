"""Every aggregate the store hands out is a private copy: a command on one copy never changes another, nor what
the store holds, and the state a command leaves is exactly the state its events rebuild."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.domain import Aggregate

import domain
from domain.accounts import Account
from domain.appointment import Appointment, Status as AppointmentStatus
from domain.care import Kind, PatientCare
from domain.consultation import Consultation
from domain.doctor_calendar import DoctorCalendar
from domain.doctors import Doctor, WeeklyAvailability
from domain.invoice import Discount, DocumentNumbers, Invoice, Line, Method, Origin, Series
from domain.erasure import LegalBasis, PatientErasure
from domain.medication_safety import InteractionTable, check
from domain.patient_agenda import PatientAgenda
from domain.patients import Patient
from domain.prescription import Frequency, Item, Prescription, Route
from domain.price_list import PriceList, ServiceKind
from domain.sessions import Session
from domain.shared import Cause, Role
from domain.webhooks import Delivery, EventType, GatewayEvent, WebhookLog
from infrastructure.bootstrap import Medledger
from integration_helpers import state

CAUSE = Cause("user-3", Role.DOCTOR, "corr-3")
NOW = datetime(2030, 1, 7, 9, 30, tzinfo=timezone.utc)
DAY = NOW.date()
NINE = datetime.combine(DAY, time(9), tzinfo=timezone.utc)
HALF_HOUR = timedelta(minutes=30)
WEEKDAYS = WeeklyAvailability("UTC", 30, {d: ((time(9), time(17)),) for d in ("mon", "tue", "wed", "thu", "fri")})
TABLE = InteractionTable.from_dict(
    {
        "version": "t1",
        "sources": {"s": {"citation": "A source."}},
        "classes": {},
        "pairs": [{"a": "warfarin", "b": "aspirin", "severity": "major", "effect": "Bleeding.", "sources": ["s"]}],
        "allergy_groups": {
            "penicillins": {"label": "penicillins", "terms": ["penicillin"], "members": ["amoxicillin"], "sources": ["s"]}
        },
    }
)

# Public methods that decide nothing: they read state or check a rule without emitting events.
P1, P2 = str(uuid4()), str(uuid4())  # patients' ids are UUIDs: a record naming one is sealed with their key

QUERIES = {
    Account: {"check_enabled"},
    Session: {"check_grants", "check_live"},
    Appointment: {"check_reschedulable", "summary"},
    PatientCare: {"active", "basis", "doctors"},
    Consultation: {"start", "check_follow_up", "view", "view_true_at", "entries_true_at", "true_since"},
    DoctorCalendar: {"booking_of"},
    Doctor: {"slot_at"},
    PatientErasure: {"view"},
    Prescription: {"write", "check_draft", "check_renewable", "local_day", "item", "remaining", "summary", "view"},
    Invoice: {"draft", "check_issuable", "credit_lines", "payment_with", "summary", "totals", "view"},
    DocumentNumbers: {"number"},
    PriceList: {"rate", "service", "view"},
}


def item(name: str, item_id: str) -> Item:
    return Item(item_id, name, "500 mg", "tablet", "1 tablet", Route.ORAL, Frequency.TWICE_DAILY, 7, 14, 1, "With food.")


# Given: an aggregate with a rich history (nested values everywhere a command may reach)


def an_account() -> Account:
    account = Account(email=f"a-{uuid4().hex[:8]}@x.example", password_hash="h1", role="admin", profile_id=None, cause=CAUSE.as_dict())
    account.change_role(Role.AUDITOR, "rotation", CAUSE)
    return account


def a_session() -> Session:
    return Session(account_id=str(uuid4()), account_epoch=1, token_id="t1", expires_at=NOW + timedelta(days=14), cause=CAUSE.as_dict())


def a_doctor() -> Doctor:
    doctor = Doctor(account_id=str(uuid4()), profile={"name": "Dr A", "specialization": "GP", "licence_number": "L1",
                                                      "consultation_fee": "80.00", "bio": "", "languages": ["en"]},
                    cause=CAUSE.as_dict())
    doctor.set_availability(WEEKDAYS, CAUSE)
    return doctor


def a_patient() -> Patient:
    return Patient(account_id=str(uuid4()), profile={"full_name": "Pat", "allergies": ["latex"],
                                                     "address": {"line1": "1 High St", "city": "Leeds"}},
                   cause=CAUSE.as_dict())


def an_appointment(status: AppointmentStatus = AppointmentStatus.BOOKED) -> Appointment:
    appointment = Appointment(id=uuid4(), doctor_id="d1", patient_id=P1, start=NINE, end=NINE + HALF_HOUR, day=DAY,
                              overbooked=False, reason=None, cause=CAUSE.as_dict())
    if status == AppointmentStatus.IN_PROGRESS:
        appointment.start_consultation("c1", NINE, CAUSE)
    return appointment


def an_appointment_of(patient_id: str) -> Appointment:
    return Appointment(id=uuid4(), doctor_id="d5", patient_id=patient_id, start=NINE, end=NINE + HALF_HOUR, day=DAY,
                       overbooked=False, reason=None, cause=CAUSE.as_dict())


def a_calendar(leave: bool = False) -> DoctorCalendar:
    calendar = DoctorCalendar(doctor_id=str(uuid4()), day=DAY, cause=CAUSE.as_dict())
    if leave:
        calendar.take_leave("conference", CAUSE)
    else:
        calendar.book("a1", P1, NINE, NINE + HALF_HOUR, None, CAUSE)
    return calendar


def an_agenda() -> PatientAgenda:
    agenda = PatientAgenda(patient_id=str(uuid4()), day=DAY, cause=CAUSE.as_dict())
    agenda.hold("a1", NINE, NINE + HALF_HOUR, CAUSE)
    return agenda


def a_care() -> PatientCare:
    care = PatientCare(patient_id=str(uuid4()), cause=CAUSE.as_dict())
    care.start("r1", "d1", Kind.PRIMARY, "registered", NOW, CAUSE)
    care.break_glass("g1", "d2", "unconscious in the emergency room", NOW, timedelta(hours=1), CAUSE)
    return care


def a_consultation(signed: bool = False) -> Consultation:
    consultation = Consultation.start(uuid4(), P1, "d1", "a1", "in_person", NOW, CAUSE)
    consultation.record_complaint("e1", "Headache", NOW, CAUSE)
    consultation.record_symptom("e2", "nausea", "2030-01-06", "mild", "a day", NOW, CAUSE)
    consultation.record_vital_signs("e3", {"pulse": 72, "systolic": 120, "diastolic": 80}, None, NOW, CAUSE)
    consultation.record_diagnosis("e4", "G43.9", "Migraine", "primary", "provisional", NOW, CAUSE)
    consultation.add_note("e5", "Likely migraine.", "d1", NOW, CAUSE)
    consultation.attach("f1", "lab_report", "cbc.pdf", "application/pdf", 10, "a" * 64, NOW, CAUSE)
    consultation.recommend_follow_up(DAY + timedelta(days=14), "review", NOW, CAUSE)
    consultation.amend("m1", "e1", {"text": "Severe headache"}, "typo in complaint", NOW, CAUSE)
    if signed:
        consultation.sign(NOW, CAUSE)
    return consultation


def a_prescription(issued: bool = False) -> Prescription:
    prescription = Prescription.write(uuid4(), "c1", P1, "d1", [item("Amoxicillin", "i1"), item("Ibuprofen", "i2")],
                                      "Europe/London", NOW, CAUSE)
    prescription.record_check(check(TABLE, prescription.medications, ["latex"]), NOW, CAUSE)
    if issued:
        prescription.issue(check(TABLE, prescription.medications, ["latex"]), None, NOW, DAY + timedelta(days=30), CAUSE)
        prescription.dispense("i1", 7, NOW, CAUSE)
    return prescription


def newer_table() -> InteractionTable:
    return InteractionTable.from_dict(
        {
            "version": "t2",
            "sources": {"s": {"citation": "A source."}},
            "classes": {},
            "pairs": [{"a": "amoxicillin", "b": "ibuprofen", "severity": "moderate", "effect": "Made up.", "sources": ["s"]}],
            "allergy_groups": {},
        }
    )


# When: every command of every aggregate


SECOND_ADMIN = Cause("second-admin", Role.ADMIN, "corr-second")


def an_erasure() -> PatientErasure:
    return PatientErasure(str(uuid4()), CAUSE.as_dict())  # one stream per patient: a fresh patient each time


def a_requested_erasure() -> PatientErasure:
    erasure = an_erasure()
    erasure.request("r1", LegalBasis.CONSENT_WITHDRAWN, "consent withdrawn in writing", NOW, CAUSE)
    return erasure


@dataclass(frozen=True)
class Case:
    cls: type[Aggregate]
    command: str
    given: Callable[[], Aggregate]
    when: Callable[[Any], object]

    @property
    def id(self) -> str:
        return f"{self.cls.__name__}.{self.command}"


def an_invoice(issued: bool = False, paid: bool = False) -> Invoice:
    lines = (
        (Line("l1", "visit", "Consultation", Decimal(1), Decimal("80.00"), Decimal(0)), "EUR"),
        (Line("l2", "ecg", "ECG", Decimal(2), Decimal("40.00"), Decimal("19")), "EUR"),
    )
    invoice = Invoice.draft(uuid4(), P1, "EUR", Origin.MANUAL, CAUSE, doctor_id="d1", lines=lines)
    invoice.discount_line("l2", Discount.of("percent", "10", "staff", "EUR"), CAUSE)
    if issued or paid:
        invoice.issue("2030-000001", NOW, DAY + timedelta(days=30), CAUSE)
    if paid:
        invoice.record_payment("p1", "card-1", Method.CARD, Decimal("50.00"), "EUR", NOW, CAUSE)
    return invoice


def a_price_list() -> PriceList:
    prices = PriceList(id=uuid4(), clinic="main")
    prices.set_tax_category("standard", "19", CAUSE)
    prices.set_service("ecg", "ECG", ServiceKind.TEST, "40.00", "EUR", "standard", CAUSE)
    return prices


DELIVERY = Delivery(NOW, "10.0.0.9", "a" * 64, 120)
FAILED = GatewayEvent("evt_1", EventType.PAYMENT_FAILED, str(uuid4()), "pay_1", Decimal("10.00"), "EUR", "card_declined")


def a_webhook_log() -> WebhookLog:
    log = WebhookLog.open(f"signed-{uuid4().hex[:8]}", DAY)  # the stream of a gateway and a day: one per case
    log.refuse("bad_signature", "The signature does not match.", DELIVERY, CAUSE)
    return log


LATER = NOW + timedelta(hours=2)
CASES = [
    Case(Account, "disable", an_account, lambda a: a.disable("left", CAUSE)),
    Case(Account, "enable", lambda: (lambda a: (a.disable("left", CAUSE), a)[1])(an_account()), lambda a: a.enable("back", CAUSE)),
    Case(Account, "change_role", an_account, lambda a: a.change_role(Role.ANALYST, "rotation", CAUSE)),
    Case(Account, "change_password", an_account, lambda a: a.change_password("h2", CAUSE)),
    Case(Account, "lock_out", an_account, lambda a: a.lock_out(NOW, 5, "10.0.0.7", [timedelta(minutes=1), timedelta(minutes=5)], CAUSE)),
    Case(Account, "unlock", lambda: (lambda a: (a.lock_out(NOW, 5, "10.0.0.7", [timedelta(minutes=1)], CAUSE), a)[1])(an_account()),
         lambda a: a.unlock("verified by phone", CAUSE)),
    Case(Session, "rotate", a_session, lambda s: s.rotate("t1", "t2", NOW + timedelta(days=15), NOW, CAUSE)),
    Case(Session, "revoke", a_session, lambda s: s.revoke("logout", CAUSE)),
    Case(Doctor, "update_profile", a_doctor, lambda d: d.update_profile({"bio": "Migraines.", "languages": ["en", "fr"]}, CAUSE)),
    Case(Doctor, "set_availability", a_doctor,
         lambda d: d.set_availability(WeeklyAvailability("UTC", 20, {"mon": ((time(8), time(12)),)}), CAUSE)),
    Case(Patient, "update_profile", a_patient,
         lambda p: p.update_profile({"allergies": ["latex", "penicillin"], "address": {"line1": "2 Low St", "city": "York"}}, CAUSE)),
    Case(Appointment, "confirm", an_appointment, lambda a: a.confirm(CAUSE)),
    Case(Appointment, "cancel", an_appointment, lambda a: a.cancel("ill", NOW - timedelta(days=1), None, CAUSE)),
    Case(Appointment, "reschedule", an_appointment,
         lambda a: a.reschedule(NINE + HALF_HOUR, NINE + 2 * HALF_HOUR, DAY, "clash", CAUSE)),
    Case(Appointment, "start_consultation", an_appointment, lambda a: a.start_consultation("c1", NOW, CAUSE)),
    Case(Appointment, "complete", lambda: an_appointment(AppointmentStatus.IN_PROGRESS), lambda a: a.complete(LATER, CAUSE)),
    Case(Appointment, "mark_no_show", an_appointment, lambda a: a.mark_no_show(LATER, CAUSE)),
    Case(Appointment, "correct_status", lambda: an_appointment(AppointmentStatus.IN_PROGRESS),
         lambda a: a.correct_status(AppointmentStatus.NO_SHOW, "never came", LATER, CAUSE)),
    Case(DoctorCalendar, "book", a_calendar, lambda c: c.book("a2", P2, NINE + HALF_HOUR, NINE + 2 * HALF_HOUR, None, CAUSE)),
    Case(DoctorCalendar, "release", a_calendar, lambda c: c.release("a1", CAUSE)),
    Case(DoctorCalendar, "take_leave", lambda: DoctorCalendar(doctor_id=str(uuid4()), day=DAY, cause=CAUSE.as_dict()),
         lambda c: c.take_leave("conference", CAUSE)),
    Case(DoctorCalendar, "cancel_leave", lambda: a_calendar(leave=True), lambda c: c.cancel_leave("back", CAUSE)),
    Case(PatientAgenda, "hold", an_agenda, lambda a: a.hold("a2", NINE + HALF_HOUR, NINE + 2 * HALF_HOUR, CAUSE)),
    Case(PatientAgenda, "release", an_agenda, lambda a: a.release("a1", CAUSE)),
    Case(PatientCare, "start", a_care, lambda c: c.start("r2", "d3", Kind.REFERRAL, "cardiology", NOW, CAUSE, referring_doctor_id="d1")),
    Case(PatientCare, "end", a_care, lambda c: c.end("r1", "moved away", NOW, CAUSE)),
    Case(PatientCare, "track_visit", a_care, lambda c: c.track_visit(an_appointment_of(c.patient_id), CAUSE)),
    Case(PatientCare, "break_glass", a_care, lambda c: c.break_glass("g2", "d4", "collapsed at the front desk", NOW, HALF_HOUR, CAUSE)),
    Case(Consultation, "record_complaint", lambda: Consultation.start(uuid4(), P1, "d1", None, "video", NOW, CAUSE),
         lambda c: c.record_complaint("e1", "Cough", NOW, CAUSE)),
    Case(Consultation, "record_symptom", a_consultation, lambda c: c.record_symptom("e6", "fever", None, "moderate", None, NOW, CAUSE)),
    Case(Consultation, "record_vital_signs", a_consultation,
         lambda c: c.record_vital_signs("e6", {"temperature": 38.2}, None, NOW, CAUSE)),
    Case(Consultation, "record_diagnosis", a_consultation,
         lambda c: c.record_diagnosis("e6", "R51", "Headache", "secondary", "confirmed", NOW, CAUSE)),
    Case(Consultation, "add_note", a_consultation, lambda c: c.add_note("e6", "Advised rest.", "d1", NOW, CAUSE)),
    Case(Consultation, "attach", a_consultation,
         lambda c: c.attach("f2", "scan", "ct.png", "image/png", 20, "b" * 64, NOW, CAUSE)),
    Case(Consultation, "recommend_follow_up", a_consultation,
         lambda c: c.recommend_follow_up(DAY + timedelta(days=28), "review again", NOW, CAUSE)),
    Case(Consultation, "record_follow_up_booking", a_consultation,
         lambda c: c.record_follow_up_booking("a9", NINE + timedelta(days=14), CAUSE)),
    Case(Consultation, "sign", a_consultation, lambda c: c.sign(NOW, CAUSE)),
    Case(Consultation, "amend", lambda: a_consultation(signed=True),
         lambda c: c.amend("m2", "e3", {"pulse": 80}, "misread the monitor", NOW, CAUSE)),
    Case(Consultation, "amend (twice the same entry)", lambda: a_consultation(signed=True),
         lambda c: c.amend("m2", "e1", {"text": "Headache and neck pain"}, "complaint was incomplete", NOW, CAUSE)),
    Case(Prescription, "revise_items", a_prescription, lambda p: p.revise_items([item("Paracetamol", "i3")], CAUSE)),
    Case(Prescription, "record_check", a_prescription,
         lambda p: p.record_check(check(TABLE, p.medications, ["latex", "penicillin"]), NOW, CAUSE)),
    Case(Prescription, "issue", a_prescription,
         lambda p: p.issue(check(TABLE, p.medications, []), None, NOW, DAY + timedelta(days=30), CAUSE)),
    Case(Prescription, "dispense", lambda: a_prescription(issued=True), lambda p: p.dispense("i1", 7, NOW, CAUSE)),
    Case(Prescription, "cancel", lambda: a_prescription(issued=True), lambda p: p.cancel("changed my mind", NOW, CAUSE)),
    Case(Prescription, "expire", lambda: a_prescription(issued=True), lambda p: p.expire(NOW + timedelta(days=45), CAUSE)),
    Case(Prescription, "renewed", lambda: a_prescription(issued=True), lambda p: p.renewed(str(uuid4()), CAUSE)),
    Case(Prescription, "recheck", lambda: a_prescription(issued=True), lambda p: p.recheck(check(newer_table(), p.medications, ["latex"]), NOW, CAUSE)),
    Case(PatientErasure, "request", an_erasure, lambda e: e.request("r1", LegalBasis.OBJECTION, "objects to the processing", NOW, CAUSE)),
    Case(PatientErasure, "approve", a_requested_erasure, lambda e: e.approve("no duty to keep the records", NOW, SECOND_ADMIN)),
    Case(PatientErasure, "reject", a_requested_erasure, lambda e: e.reject("records are kept ten years", NOW, SECOND_ADMIN)),
    Case(Invoice, "add_line", an_invoice, lambda i: i.add_line(Line("l3", "test", "Test", Decimal(1), Decimal("5.00"), Decimal(7)), "EUR", CAUSE)),
    Case(Invoice, "remove_line", an_invoice, lambda i: i.remove_line("l1", CAUSE)),
    Case(Invoice, "discount_line", an_invoice, lambda i: i.discount_line("l1", Discount.of("amount", "5.00", "loyal", "EUR"), CAUSE)),
    Case(Invoice, "discount_invoice", an_invoice, lambda i: i.discount_invoice(Discount.of("percent", "5", "promo", "EUR"), CAUSE)),
    Case(Invoice, "issue", an_invoice, lambda i: i.issue("2030-000002", NOW, DAY + timedelta(days=30), CAUSE)),
    Case(Invoice, "credit", lambda: an_invoice(paid=True),
         lambda i: i.credit("c1", "CN-2030-000001", i.credit_lines({"l2": Decimal(1)}), "not performed", NOW, CAUSE)),
    Case(Invoice, "record_payment", lambda: an_invoice(paid=True),
         lambda i: i.record_payment("p2", "card-2", Method.INSURANCE, Decimal("20.00"), "EUR", NOW, CAUSE, payer="Acme", claim_reference="C-1")),
    Case(Invoice, "refund", lambda: an_invoice(paid=True), lambda i: i.refund("f1", Decimal("20.00"), Method.CARD, "goodwill", NOW, CAUSE)),
    Case(Invoice, "void", lambda: an_invoice(issued=True), lambda i: i.void("issued twice", NOW, CAUSE)),
    Case(Invoice, "write_off_balance", lambda: an_invoice(paid=True), lambda i: i.write_off_balance("uncollectable", NOW, CAUSE)),
    Case(DocumentNumbers, "take", lambda: (lambda n: (n.take("i1", CAUSE), n)[1])(DocumentNumbers(id=uuid4(), clinic="main", series=Series.INVOICE.value, year=2030)),
         lambda n: n.take("i2", CAUSE)),
    Case(PriceList, "set_tax_category", a_price_list, lambda p: p.set_tax_category("reduced", "7", CAUSE)),
    Case(PriceList, "set_service", a_price_list, lambda p: p.set_service("ecg", "ECG", ServiceKind.TEST, "45.00", "EUR", "standard", CAUSE)),
    Case(PriceList, "retire_service", a_price_list, lambda p: p.retire_service("ecg", CAUSE)),
    Case(WebhookLog, "refuse", a_webhook_log, lambda w: w.refuse("stale_timestamp", "Too old.", DELIVERY, CAUSE, {"event_id": "evt_2"})),
    Case(WebhookLog, "payment_failed", a_webhook_log, lambda w: w.payment_failed(FAILED, DELIVERY, CAUSE)),
]


def aggregate_types() -> set[type[Aggregate]]:
    for module in pkgutil.iter_modules(domain.__path__):
        importlib.import_module(f"domain.{module.name}")
    found: set[type[Aggregate]] = set()
    pending = list(Aggregate.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__.startswith("domain.") and "." not in cls.__qualname__:
            found.add(cls)
    return found


def commands_of(cls: type[Aggregate]) -> set[str]:
    return {
        name
        for name, member in vars(cls).items()
        if not name.startswith("_") and inspect.isfunction(member)
    } - QUERIES.get(cls, set())


def test_the_cases_cover_every_command_of_every_aggregate() -> None:
    covered = {(case.cls, case.command.split(" ")[0]) for case in CASES}
    wanted = {(cls, name) for cls in aggregate_types() for name in commands_of(cls)}
    missing = sorted(f"{cls.__name__}.{name}" for cls, name in wanted - covered)
    assert not missing, f"add a case (or, if it emits nothing, a QUERIES entry) for: {missing}"


def recorded_state(system: Medledger, aggregate: Aggregate) -> dict[str, Any]:
    return state(system.store.app.repository.get(aggregate.id))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_command_on_one_copy_changes_no_other_copy(module_system: Medledger, case: Case) -> None:
    system = module_system
    given = case.given()
    system.store.save(given)
    first, second = system.store.find(case.cls, given.id), system.store.find(case.cls, given.id)
    before = state(second)

    case.when(first)

    new_events = first.collect_events()
    assert new_events, f"{case.id} should have emitted an event"
    assert state(second) == before, "a command on one copy changed another copy"
    assert state(system.store.find(case.cls, given.id)) == before, "a command that was not saved changed what the store hands out"
    assert recorded_state(system, given) == before


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_command_leaves_exactly_the_state_its_recorded_events_rebuild(module_system: Medledger, case: Case) -> None:
    system = module_system
    given = case.given()
    system.store.save(given)
    acted = system.store.find(case.cls, given.id)

    case.when(acted)
    system.store.save(acted)

    assert state(acted) == recorded_state(system, given)
    assert state(system.store.find(case.cls, given.id)) == recorded_state(system, given)
