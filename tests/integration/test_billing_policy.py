"""The drafting policy drafts one invoice per attended visit, and a no-show's fee when one is set, exactly once:
run twice, reset, rebuilt around or SIGKILLed mid-stream and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from sqlalchemy import update

from commands import appointments, consultations, erasure
from commands.appointments import BookAppointment, CompleteAppointment, CorrectStatus, MarkNoShow
from commands.base import Actor, Services
from commands.billing import no_show_invoice_id, visit_invoice_id
from domain.appointment import Status
from domain.erasure import LegalBasis
from domain.invoice import Invoice, Origin
from domain.price_list import CONSULTATION, NO_SHOW
from domain.shared import Role
from infrastructure.billing_policy import NAME, DraftingPolicy, policy_positions
from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.settings import Settings
from integration_helpers import (
    ADMIN,
    Member,
    book_many,
    environment,
    midnight_after,
    open_doctor,
    open_patient,
    running,
    wait_until,
)
from test_projector_kill import medledger_command

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
DRAFTED = "medledger:Invoice.Drafted.v1"
LINE_ADDED = "medledger:Invoice.LineAdded.v1"
COMPLETED = "medledger:Appointment.Completed.v1"
SECOND_ADMIN = Actor(account_id="second-admin-of-the-tests", role=Role.ADMIN, profile_id=None, correlation_id="integration-admin-2")


def drafted(m: Medledger) -> list[UUID]:
    """The invoice streams in the event store, one entry per Drafted event."""
    return [n.originator_id for n in m.store.recorder.select_notifications(start=1, limit=100_000, topics=[DRAFTED])]


def follow(m: Medledger) -> None:
    assert m.drafting is not None
    while m.drafting.run_once():
        pass


def book(svc: Services, doctor: Member, patient: Member, hour: int) -> str:
    start = midnight_after(svc.clock()) + timedelta(hours=hour)
    return appointments.book_appointment(svc, BookAppointment(doctor.profile_id, patient.profile_id, start), ADMIN).id


def sign_visit(svc: Services, doctor: Member, appointment_id: str) -> None:
    consultation = consultations.start_consultation(svc, consultations.StartConsultation("in_person", appointment_id), doctor.actor)
    consultations.record_complaint(svc, consultations.RecordComplaint(consultation.id, "a cough for a week"), doctor.actor)
    consultations.sign_consultation(svc, consultations.SignConsultation(consultation.id), doctor.actor)


@pytest.fixture
def sqlite_system(make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings("sqlite", billing_policy=True, no_show_fee=Decimal("25.00")), clock) as system:
        yield system


def test_a_completed_visit_and_a_signed_one_get_one_draft_each_at_the_doctors_fee_whatever_repeats(
    make_settings, clock
) -> None:
    with running(make_settings("sqlite", billing_policy=True), clock) as m:
        svc = m.services
        doctor, patient = open_doctor(svc), open_patient(svc)
        completed, no_show, signed = (book(svc, doctor, patient, hour) for hour in (9, 10, 11))
        clock.advance(days=2)
        appointments.complete_appointment(svc, CompleteAppointment(completed), ADMIN)
        appointments.mark_no_show(svc, MarkNoShow(no_show), ADMIN)
        sign_visit(svc, doctor, signed)  # completes the appointment too: two events, one visit

        follow(m)

        assert sorted(drafted(m)) == sorted([visit_invoice_id(completed), visit_invoice_id(signed)])
        invoice = svc.store.find(Invoice, visit_invoice_id(completed))
        assert (invoice.origin, invoice.patient_id, invoice.doctor_id, invoice.appointment_id) == (
            Origin.VISIT, patient.profile_id, doctor.profile_id, completed
        )
        (line,) = invoice.lines.values()
        assert (line.service_code, line.quantity, line.unit_price) == (CONSULTATION, Decimal(1), Decimal("80.00"))
        assert invoice.totals().total == Decimal("80.00")

        end = m.store.max_position()
        follow(m)
        with m.write_engine.begin() as conn:
            conn.execute(update(policy_positions).where(policy_positions.c.name == NAME).values(position=0))
        restarted = DraftingPolicy(svc, m.store.app, m.write_engine, batch=2)
        while restarted.run_once():
            pass
        m.projection.rebuild(["appointments"])
        follow(m)
        assert m.store.max_position() == end
        assert restarted.position() == end


def test_a_no_show_is_charged_the_fee_an_erased_patients_visit_is_skipped_and_a_correction_counts(
    sqlite_system: Medledger, clock
) -> None:
    m = sqlite_system
    svc = m.services
    doctor, patient, forgotten = open_doctor(svc), open_patient(svc), open_patient(svc, "Erased Soon")
    missed, corrected, erased_visit, after = (book(svc, doctor, who, hour) for who, hour in
                                              ((patient, 9), (patient, 10), (forgotten, 11), (patient, 12)))
    clock.advance(days=2)
    appointments.mark_no_show(svc, MarkNoShow(missed), ADMIN)
    appointments.mark_no_show(svc, MarkNoShow(corrected), ADMIN)
    appointments.correct_status(svc, CorrectStatus(corrected, Status.COMPLETED, "arrived late, was seen"), ADMIN)
    appointments.complete_appointment(svc, CompleteAppointment(erased_visit), ADMIN)
    erasure.request_erasure(svc, erasure.RequestErasure(forgotten.profile_id, LegalBasis.CONSENT_WITHDRAWN, "withdrawn in writing"), ADMIN)
    erasure.approve_erasure(svc, erasure.DecideErasure(forgotten.profile_id, "no duty to keep applies"), SECOND_ADMIN)
    appointments.complete_appointment(svc, CompleteAppointment(after), ADMIN)

    follow(m)

    assert sorted(drafted(m)) == sorted([no_show_invoice_id(missed), visit_invoice_id(corrected), visit_invoice_id(after)])
    fee = svc.store.find(Invoice, no_show_invoice_id(missed))
    (line,) = fee.lines.values()
    assert (fee.origin, line.service_code, line.unit_price) == (Origin.NO_SHOW, NO_SHOW, Decimal("25.00"))
    assert m.drafting.position() == m.store.max_position()


def test_on_its_first_start_the_policy_begins_at_the_end_of_the_log(make_settings, clock) -> None:
    settings = make_settings("sqlite", billing_policy=False)
    with running(settings, clock) as m:
        svc = m.services
        doctor, patient = open_doctor(svc), open_patient(svc)
        past, later = book(svc, doctor, patient, 9), book(svc, doctor, patient, 10)
        clock.advance(days=2)
        appointments.complete_appointment(svc, CompleteAppointment(past), ADMIN)
        assert m.drafting is None
    with running(settings.model_copy(update={"billing_policy": True}), clock) as m:
        follow(m)
        assert drafted(m) == []
        appointments.complete_appointment(m.services, CompleteAppointment(later), ADMIN)
        follow(m)
        assert drafted(m) == [visit_invoice_id(later)]


def test_in_process_the_projector_thread_of_the_api_drafts_the_visit(make_settings, clock) -> None:
    m = bootstrap(make_settings("sqlite", billing_policy=True), clock=clock)
    try:
        m.start_projector()
        doctor, patient = open_doctor(m.services), open_patient(m.services)
        visit = book(m.services, doctor, patient, 9)
        clock.advance(days=2)
        appointments.complete_appointment(m.services, CompleteAppointment(visit), ADMIN)
        assert wait_until(lambda: drafted(m) == [visit_invoice_id(visit)], timeout=20)
    finally:
        m.close()


# -- the policy's worker SIGKILLed mid-stream, on PostgreSQL ---------------------------------------------------------

APPOINTMENTS, PER_DAY = 200, 20


class PolicyProcess:
    """`medledger projector` (the projectors and the drafting policy) as its own process, on this worktree's code."""

    def __init__(self, settings: Settings, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
        env.update(environment(settings), MEDLEDGER_PROJECTOR="external", MEDLEDGER_PROJECTOR_POLL_SECONDS="0.01")
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen([medledger_command(), "projector"], env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def ensure_gone(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait(timeout=10)


def complete_all(svc: Services, appointment_ids: list[str], threads: int = 4) -> None:
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda a: appointments.complete_appointment(svc, CompleteAppointment(a), ADMIN), appointment_ids))


@pytest.mark.postgres
def test_the_drafting_policy_creates_exactly_one_invoice_per_completed_appointment_after_being_sigkilled_mid_stream_and_restarted(
    make_settings, clock, tmp_path: Path
) -> None:
    with running(make_settings("postgres", projector="external", pool_size=3, billing_policy=True), clock) as m:
        svc = m.services
        doctor = open_doctor(svc)
        patients = [open_patient(svc, f"Billed {n}") for n in range(10)]
        booked = book_many(svc, doctor, patients, midnight_after(svc.clock()), days=APPOINTMENTS // PER_DAY, per_day=PER_DAY)
        clock.advance(days=APPOINTMENTS // PER_DAY + 1)
        complete_all(svc, booked)
        last_completion = m.store.max_position()
        log = tmp_path / "policy.log"

        first = PolicyProcess(m.settings, log)
        try:
            seen_drafting = wait_until(lambda: 0 < len(drafted(m)) or not first.alive(), timeout=90, interval=0.005)
            assert seen_drafting and first.alive(), f"never saw the policy draft:\n{first.output()}"
            os.kill(first.process.pid, signal.SIGKILL)
            assert first.process.wait(timeout=10) == -signal.SIGKILL
        finally:
            first.ensure_gone()
        at_death = len(drafted(m))
        assert 0 < at_death < APPOINTMENTS, "the policy was not killed mid-stream"
        assert m.drafting.position() < last_completion

        second = PolicyProcess(m.settings, log)
        try:
            caught_up = wait_until(
                lambda: len(drafted(m)) >= APPOINTMENTS and m.drafting.position() == m.store.max_position(), timeout=90, interval=0.02
            )
            assert caught_up and second.alive(), f"{len(drafted(m))} drafted:\n{second.output()}"
            second.process.send_signal(signal.SIGTERM)
            assert second.process.wait(timeout=20) == 0, second.output()
        finally:
            second.ensure_gone()

        invoices = drafted(m)
        assert len(invoices) == len(set(invoices)) == APPOINTMENTS
        assert set(invoices) == {visit_invoice_id(a) for a in booked}
        lines = Counter(n.originator_id for n in m.store.recorder.select_notifications(start=1, limit=100_000, topics=[LINE_ADDED]))
        assert lines == {invoice: 1 for invoice in invoices}
