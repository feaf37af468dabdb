"""Consultation commands: start (from an appointment or as a walk-in), record, attach, sign, amend, follow up; and reads.

The consultation's doctor writes, while they may still write to the patient's record; anyone else who may
read the record is refused (403), anyone who may not is told it does not exist (404).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import uuid4

from commands import appointments
from commands.access import RecordAccess, clinical_writer, record_access
from commands.base import Actor, Outcome, RecordNotFoundError, Services, change, load, require, retrying
from commands.read_log import read_recorded
from domain.appointment import Appointment, Status
from domain.attachments import AttachmentKind, content_type_of, sha256_hex
from domain.consultation import Consultation, consultation_id
from domain.read_log import Shown
from domain.shared import InvalidInputError, Role


@dataclass(frozen=True)
class StartConsultation:
    kind: str
    appointment_id: str | None = None
    patient_id: str | None = None


@dataclass(frozen=True)
class RecordComplaint:
    consultation_id: str
    text: str


@dataclass(frozen=True)
class RecordSymptom:
    consultation_id: str
    name: str
    severity: str
    onset: date | datetime | None = None
    duration: str | None = None


@dataclass(frozen=True)
class RecordVitalSigns:
    consultation_id: str
    values: dict[str, Any]
    measured_at: datetime | None = None


@dataclass(frozen=True)
class RecordDiagnosis:
    consultation_id: str
    code: str
    description: str
    rank: str
    status: str


@dataclass(frozen=True)
class AddNote:
    consultation_id: str
    text: str


@dataclass(frozen=True)
class AddAttachment:
    consultation_id: str
    kind: AttachmentKind
    filename: str
    declared_type: str | None
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class RecommendFollowUp:
    consultation_id: str
    on: date
    reason: str


@dataclass(frozen=True)
class BookFollowUp:
    consultation_id: str
    start: datetime


@dataclass(frozen=True)
class SignConsultation:
    consultation_id: str


@dataclass(frozen=True)
class AmendEntry:
    consultation_id: str
    entry_id: str
    changes: dict[str, Any]
    reason: str
    effective_at: datetime | None = None


def _hidden(consultation_id: str) -> RecordNotFoundError:
    return RecordNotFoundError(f"No consultation {consultation_id}.")


def visible(svc: Services, consultation_id: str, actor: Actor) -> tuple[Consultation, RecordAccess]:
    """The consultation and the caller's access to its patient's record; "not found" without any."""
    consultation = svc.store.find(Consultation, consultation_id)
    if consultation is None:
        raise _hidden(consultation_id)
    try:
        return consultation, record_access(svc, actor, consultation.patient_id)
    except RecordNotFoundError:
        raise _hidden(consultation_id) from None


def _for_its_doctor(svc: Services, consultation_id: str, actor: Actor) -> Callable[[], Consultation]:
    def load_one() -> Consultation:
        consultation, access = visible(svc, consultation_id, actor)
        require(actor.owns(Role.DOCTOR, consultation.doctor_id), "Only the consultation's doctor records in it.")
        require(access.may_write, "Only a doctor treating this patient writes to the medical record.")
        return consultation

    return load_one


def _record(svc: Services, consultation_id: str, actor: Actor, act: Callable[[Consultation], None]) -> Outcome:
    return change(svc.store, _for_its_doctor(svc, consultation_id, actor), act)


def start_consultation(svc: Services, cmd: StartConsultation, actor: Actor) -> Outcome:
    """From an appointment (its doctor; starting again is the same consultation) or as a walk-in (a treating doctor)."""
    if cmd.appointment_id is not None:
        return _start_from_appointment(svc, cmd.appointment_id, cmd.kind, actor)
    if cmd.patient_id is None:
        raise InvalidInputError("Name the appointment or, for a walk-in, the patient.", field="patient_id")
    clinical_writer(svc, actor, cmd.patient_id)
    require(actor.is_(Role.DOCTOR) and actor.profile_id is not None, "Only doctors start consultations.")
    new_id = uuid4()

    def decide() -> Outcome:
        consultation = Consultation.start(new_id, cmd.patient_id, actor.profile_id, None, cmd.kind, svc.clock(), actor.cause)
        return Outcome(str(new_id), svc.store.save(consultation), created=True)

    return retrying(svc.store, decide)


def _start_from_appointment(svc: Services, appointment_id: str, kind: str, actor: Actor) -> Outcome:
    store = svc.store
    new_id = consultation_id(appointment_id)

    def decide() -> Outcome:
        appointment = store.find(Appointment, appointment_id)
        if appointment is None or not appointments.may_see_appointment(actor, appointment.doctor_id, appointment.patient_id):
            raise RecordNotFoundError(f"No appointment {appointment_id}.")
        require(actor.owns(Role.DOCTOR, appointment.doctor_id), "Only the appointment's doctor starts its consultation.")
        if store.find(Consultation, new_id) is not None:
            return Outcome(str(new_id), None)
        now = svc.clock()
        appointment.start_consultation(str(new_id), now, actor.cause)
        consultation = Consultation.start(
            new_id, appointment.patient_id, appointment.doctor_id, str(appointment.id), kind, now, actor.cause
        )
        care = appointments.visit_tracked(store, appointment, actor.cause)
        return Outcome(str(new_id), store.save(appointment, consultation, care), created=True)

    return retrying(store, decide)


def record_complaint(svc: Services, cmd: RecordComplaint, actor: Actor) -> Outcome:
    entry_id = str(uuid4())
    return _record(svc, cmd.consultation_id, actor, lambda c: c.record_complaint(entry_id, cmd.text, svc.clock(), actor.cause))


def record_symptom(svc: Services, cmd: RecordSymptom, actor: Actor) -> Outcome:
    entry_id = str(uuid4())
    return _record(
        svc,
        cmd.consultation_id,
        actor,
        lambda c: c.record_symptom(entry_id, cmd.name, cmd.onset, cmd.severity, cmd.duration, svc.clock(), actor.cause),
    )


def record_vital_signs(svc: Services, cmd: RecordVitalSigns, actor: Actor) -> Outcome:
    entry_id = str(uuid4())
    return _record(
        svc,
        cmd.consultation_id,
        actor,
        lambda c: c.record_vital_signs(entry_id, cmd.values, cmd.measured_at, svc.clock(), actor.cause),
    )


def record_diagnosis(svc: Services, cmd: RecordDiagnosis, actor: Actor) -> Outcome:
    entry_id = str(uuid4())
    return _record(
        svc,
        cmd.consultation_id,
        actor,
        lambda c: c.record_diagnosis(entry_id, cmd.code, cmd.description, cmd.rank, cmd.status, svc.clock(), actor.cause),
    )


def add_note(svc: Services, cmd: AddNote, actor: Actor) -> Outcome:
    entry_id = str(uuid4())
    return _record(
        svc,
        cmd.consultation_id,
        actor,
        lambda c: c.add_note(entry_id, cmd.text, c.doctor_id, svc.clock(), actor.cause),
    )


def add_attachment(svc: Services, cmd: AddAttachment, actor: Actor) -> Outcome:
    """Checks the bytes' type, records their hash on the consultation and stores them under it (once)."""
    content_type = content_type_of(cmd.content, cmd.declared_type, cmd.kind)
    sha256 = sha256_hex(cmd.content)
    attachment_id = str(uuid4())

    def act(c: Consultation) -> None:
        c.attach(attachment_id, cmd.kind.value, cmd.filename, content_type, len(cmd.content), sha256, svc.clock(), actor.cause)
        svc.blobs.put(cmd.content, c.patient_id)

    outcome = _record(svc, cmd.consultation_id, actor, act)
    return Outcome(attachment_id, outcome.position, created=outcome.position is not None)


def recommend_follow_up(svc: Services, cmd: RecommendFollowUp, actor: Actor) -> Outcome:
    return _record(
        svc, cmd.consultation_id, actor, lambda c: c.recommend_follow_up(cmd.on, cmd.reason, svc.clock(), actor.cause)
    )


def book_follow_up(svc: Services, cmd: BookFollowUp, actor: Actor) -> Outcome:
    """Books the recommended follow-up with the consultation's doctor: for its patient, its doctor or an admin."""
    consultation, _ = visible(svc, cmd.consultation_id, actor)
    require(
        actor.is_(Role.ADMIN)
        or actor.owns(Role.PATIENT, consultation.patient_id)
        or actor.owns(Role.DOCTOR, consultation.doctor_id),
        "Only the patient, the consultation's doctor or an admin books its follow-up.",
    )
    consultation.check_follow_up()
    booking = appointments.BookAppointment(consultation.doctor_id, consultation.patient_id, cmd.start)
    booked = appointments.book(svc, booking, actor)
    linked = change(
        svc.store,
        lambda: load(svc.store, Consultation, cmd.consultation_id, "consultation"),
        lambda c: c.record_follow_up_booking(booked.id, cmd.start, actor.cause),
    )
    return Outcome(booked.id, linked.position or booked.position, created=booked.created)


def sign_consultation(svc: Services, cmd: SignConsultation, actor: Actor) -> Outcome:
    """Signs; the appointment it was started from, if still in progress and begun, is completed with it."""
    load_one = _for_its_doctor(svc, cmd.consultation_id, actor)

    def decide() -> Outcome:
        consultation = load_one()
        now = svc.clock()
        consultation.sign(now, actor.cause)
        appointment = care = None
        if consultation.appointment_id is not None:
            appointment = svc.store.find(Appointment, consultation.appointment_id)
            if (
                appointment is not None
                and appointment.status == Status.IN_PROGRESS
                and appointment.consultation_id == str(consultation.id)
                and now >= appointment.start
            ):
                appointment.complete(now, actor.cause)
                care = appointments.visit_tracked(svc.store, appointment, actor.cause)
            else:
                appointment = None
        return Outcome(str(consultation.id), svc.store.save(consultation, appointment, care))

    return retrying(svc.store, decide)


def amend_entry(svc: Services, cmd: AmendEntry, actor: Actor) -> Outcome:
    amendment_id = str(uuid4())
    return _record(
        svc,
        cmd.consultation_id,
        actor,
        lambda c: c.amend(amendment_id, cmd.entry_id, cmd.changes, cmd.reason, svc.clock(), actor.cause, cmd.effective_at),
    )


# Reads


def read_consultation(svc: Services, consultation_id: str, actor: Actor, *, as_recorded: bool = False) -> dict[str, Any]:
    """The clinical view for those who may read the record clinically; the administrative view for admins."""
    consultation, access = visible(svc, consultation_id, actor)
    with read_recorded(svc, actor, "consultation", access, Shown.CONSULTATION, str(consultation.id)):
        return consultation.view(clinical=access.clinical, as_recorded=as_recorded)


@dataclass(frozen=True)
class AttachmentContent:
    filename: str
    content_type: str
    sha256: str
    content: bytes = field(repr=False)


def read_attachment(svc: Services, consultation_id: str, attachment_id: str, actor: Actor) -> AttachmentContent:
    """The attachment's bytes, checked against the SHA-256 recorded in the consultation."""
    consultation, access = visible(svc, consultation_id, actor)
    attachment = consultation.attachments.get(attachment_id)
    if not access.clinical or attachment is None:
        raise RecordNotFoundError(f"No attachment {attachment_id} on consultation {consultation_id}.")
    with read_recorded(svc, actor, "attachment download", access, Shown.ATTACHMENT, attachment_id):
        content = svc.blobs.get(attachment["sha256"], consultation.patient_id)
    return AttachmentContent(attachment["filename"], attachment["content_type"], attachment["sha256"], content)
