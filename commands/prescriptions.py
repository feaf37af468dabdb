"""Prescription commands: write, revise, check, issue, dispense, cancel, renew, and the expiry and re-check sweeps.

Who may do what:
- the doctor of the consultation writes, revises, checks, issues and cancels, while treating the patient;
- any treating doctor renews (into a prescription of their own);
- admins run the dispensing desk (dispense, cancel) and the sweeps; auditors and patients only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from commands.access import RecordAccess, clinical_writer, record_access
from commands.base import Actor, Outcome, RecordNotFoundError, Services, change, load, require, retrying
from domain.consultation import Consultation
from domain.doctors import Doctor
from domain.medication_safety import CheckerUnavailableError, SafetyCheck, check
from domain.patients import Patient
from domain.prescription import Frequency, Item, Prescription, Route, Status
from domain.shared import InvalidInputError, Role


@dataclass(frozen=True)
class ItemSpec:
    name: str
    strength: str
    form: str
    dose: str
    route: Route
    frequency: Frequency
    duration_days: int
    quantity: int
    refills: int = 0
    instructions: str = ""
    item_id: str | None = None


@dataclass(frozen=True)
class WritePrescription:
    consultation_id: str
    items: tuple[ItemSpec, ...]
    timezone: str | None = None


@dataclass(frozen=True)
class ReviseItems:
    prescription_id: str
    items: tuple[ItemSpec, ...]


@dataclass(frozen=True)
class CheckPrescription:
    prescription_id: str


@dataclass(frozen=True)
class IssuePrescription:
    prescription_id: str
    override_reason: str | None = None


@dataclass(frozen=True)
class DispensePrescription:
    prescription_id: str
    item_id: str
    quantity: int


@dataclass(frozen=True)
class CancelPrescription:
    prescription_id: str
    reason: str


@dataclass(frozen=True)
class RenewPrescription:
    prescription_id: str
    consultation_id: str | None = None


@dataclass(frozen=True)
class RecheckPrescriptions:
    """Re-checks every active prescription last checked against another table version."""


@dataclass(frozen=True)
class ExpirePrescriptions:
    """Expires every active prescription past the last day it is valid."""


@dataclass(frozen=True)
class CheckOutcome(Outcome):
    """The safety check the draft carries: the one just recorded, or the same check recorded before."""

    table_version: str = ""
    medications: tuple[str, ...] = ()
    allergies_checked: tuple[str, ...] = ()
    findings: tuple[dict[str, Any], ...] = ()
    checked_at: str = ""


@dataclass(frozen=True)
class SweepOutcome(Outcome):
    examined: int = 0
    changed: tuple[str, ...] = ()
    could_not_check: tuple[str, ...] = ()


def _items(specs: tuple[ItemSpec, ...]) -> list[Item]:
    return [
        Item(
            item_id=spec.item_id or str(uuid4()),
            name=spec.name,
            strength=spec.strength,
            form=spec.form,
            dose=spec.dose,
            route=spec.route,
            frequency=spec.frequency,
            duration_days=spec.duration_days,
            quantity=spec.quantity,
            refills=spec.refills,
            instructions=spec.instructions,
        )
        for spec in specs
    ]


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise RecordNotFoundError(f"No {what} {value}.") from None


def _visible(svc: Services, actor: Actor, prescription_id: str) -> Prescription:
    """The prescription, if the caller may know of it; otherwise "not found" naming only the prescription."""
    prescription = load(svc.store, Prescription, _uuid(prescription_id, "prescription"), "prescription")
    if readable(svc, actor, prescription.patient_id) is None:
        raise RecordNotFoundError(f"No prescription {prescription_id}.")
    return prescription


def readable(svc: Services, actor: Actor, patient_id: str) -> RecordAccess | None:
    """The caller's access to a prescription of this patient: patients (their own), auditors, admins (who run the
    dispensing desk) and doctors treating the patient; None for anyone else."""
    try:
        return record_access(svc, actor, patient_id)
    except RecordNotFoundError:
        return None


def _as_prescriber(svc: Services, actor: Actor, prescription: Prescription) -> None:
    clinical_writer(svc, actor, prescription.patient_id)
    require(actor.owns(Role.DOCTOR, prescription.doctor_id), "Only the prescribing doctor changes this prescription.")


def _consultation_of(svc: Services, actor: Actor, consultation_id: str) -> Consultation:
    """The caller's own consultation, as a doctor treating its patient."""
    consultation = load(svc.store, Consultation, _uuid(consultation_id, "consultation"), "consultation")
    try:
        clinical_writer(svc, actor, consultation.patient_id)
    except RecordNotFoundError:
        raise RecordNotFoundError(f"No consultation {consultation_id}.") from None
    require(actor.owns(Role.DOCTOR, consultation.doctor_id), "Only the consultation's doctor writes its prescriptions.")
    return consultation


def _allergies(svc: Services, patient_id: str) -> list[str]:
    patient = svc.store.find(Patient, patient_id)
    allergies = patient.profile.get("allergies") if patient is not None else None
    if patient is None or not isinstance(allergies, (list, type(None))) or not all(isinstance(a, str) for a in allergies or []):
        raise CheckerUnavailableError("The patient's allergies cannot be read, so the safety check cannot run.")
    return list(allergies or [])


def safety_check(svc: Services, prescription: Prescription) -> SafetyCheck:
    """Runs the checker on the prescription's medications and the patient's recorded allergies, or raises."""
    table = svc.interactions.current()
    return check(table, prescription.medications, _allergies(svc, prescription.patient_id))


def _doctor_timezone(svc: Services, doctor_id: str) -> str:
    doctor = svc.store.find(Doctor, doctor_id)
    return doctor.availability.timezone if doctor is not None and doctor.availability is not None else "UTC"


def write_prescription(svc: Services, cmd: WritePrescription, actor: Actor) -> Outcome:
    def decide() -> Outcome:
        consultation = _consultation_of(svc, actor, cmd.consultation_id)
        prescription = Prescription.write(
            prescription_id=uuid4(),
            consultation_id=str(consultation.id),
            patient_id=consultation.patient_id,
            doctor_id=consultation.doctor_id,
            items=_items(cmd.items),
            timezone=cmd.timezone or _doctor_timezone(svc, consultation.doctor_id),
            now=svc.clock(),
            cause=actor.cause,
        )
        return Outcome(str(prescription.id), svc.store.save(prescription), created=True)

    return retrying(svc.store, decide)


def _as_its_prescriber(svc: Services, actor: Actor, prescription_id: str) -> Prescription:
    prescription = _visible(svc, actor, prescription_id)
    _as_prescriber(svc, actor, prescription)
    return prescription


def _prescriber_change(svc: Services, actor: Actor, prescription_id: str, act) -> Outcome:  # type: ignore[no-untyped-def]
    return change(svc.store, lambda: _as_its_prescriber(svc, actor, prescription_id), act)


def revise_items(svc: Services, cmd: ReviseItems, actor: Actor) -> Outcome:
    items = _items(cmd.items)
    return _prescriber_change(svc, actor, cmd.prescription_id, lambda p: p.revise_items(items, actor.cause))


def check_prescription(svc: Services, cmd: CheckPrescription, actor: Actor) -> CheckOutcome:
    """Records the check of a draft and answers it, findings and all, so the doctor sees them at once."""

    def decide() -> CheckOutcome:
        prescription = _as_its_prescriber(svc, actor, cmd.prescription_id)
        prescription.check_draft()
        prescription.record_check(safety_check(svc, prescription), svc.clock(), actor.cause)
        shown = prescription.checks[-1]
        return CheckOutcome(
            str(prescription.id),
            svc.store.save(prescription),
            table_version=shown["table_version"],
            medications=tuple(shown["medications"]),
            allergies_checked=tuple(shown["allergies_checked"]),
            findings=tuple(shown["findings"]),
            checked_at=shown["checked_at"],
        )

    return retrying(svc.store, decide)


def issue_prescription(svc: Services, cmd: IssuePrescription, actor: Actor) -> Outcome:
    def act(prescription: Prescription) -> None:
        now = svc.clock()
        result = safety_check(svc, prescription) if prescription.status == Status.DRAFT else None
        valid_until = prescription.local_day(now + svc.prescription_validity)
        prescription.issue(result, cmd.override_reason, now, valid_until, actor.cause)

    return _prescriber_change(svc, actor, cmd.prescription_id, act)


def dispense_prescription(svc: Services, cmd: DispensePrescription, actor: Actor) -> Outcome:
    def load_one() -> Prescription:
        prescription = _visible(svc, actor, cmd.prescription_id)
        require(actor.is_(Role.ADMIN), "Only the dispensing desk (an admin) dispenses.")
        return prescription

    return change(svc.store, load_one, lambda p: p.dispense(cmd.item_id, cmd.quantity, svc.clock(), actor.cause))


def cancel_prescription(svc: Services, cmd: CancelPrescription, actor: Actor) -> Outcome:
    def load_one() -> Prescription:
        prescription = _visible(svc, actor, cmd.prescription_id)
        if not actor.is_(Role.ADMIN):
            _as_prescriber(svc, actor, prescription)
        return prescription

    return change(svc.store, load_one, lambda p: p.cancel(cmd.reason, svc.clock(), actor.cause))


def renew_prescription(svc: Services, cmd: RenewPrescription, actor: Actor) -> Outcome:
    def decide() -> Outcome:
        old = _visible(svc, actor, cmd.prescription_id)
        clinical_writer(svc, actor, old.patient_id)
        old.check_renewable()
        earlier = svc.store.find(Prescription, UUID(old.renewed_by)) if old.renewed_by is not None else None
        if earlier is not None and earlier.status != Status.CANCELLED:
            return Outcome(str(earlier.id), None)
        if cmd.consultation_id is not None:
            consultation = _consultation_of(svc, actor, cmd.consultation_id)
            if consultation.patient_id != old.patient_id:
                raise InvalidInputError("The consultation is not with this prescription's patient.", field="consultation_id")
            consultation_id = str(consultation.id)
        elif actor.owns(Role.DOCTOR, old.doctor_id):
            consultation_id = old.consultation_id
        else:
            raise InvalidInputError("Name your consultation with the patient to renew another doctor's prescription.", field="consultation_id")
        renewal = Prescription.write(
            prescription_id=uuid4(),
            consultation_id=consultation_id,
            patient_id=old.patient_id,
            doctor_id=str(actor.profile_id),
            items=list(old.items),
            timezone=old.timezone,
            now=svc.clock(),
            cause=actor.cause,
            renewed_from=str(old.id),
        )
        old.renewed(str(renewal.id), actor.cause, earlier_renewal_cancelled=earlier is not None)
        return Outcome(str(renewal.id), svc.store.save(old, renewal), created=True)

    return retrying(svc.store, decide)


def _sweep(svc: Services, actor: Actor, what: str, answer_id: str, act) -> SweepOutcome:  # type: ignore[no-untyped-def]
    require(actor.is_(Role.ADMIN), f"Only an admin runs the {what}.")
    ids = svc.prescriptions.active()
    changed: list[str] = []
    could_not_check: list[str] = []
    position: int | None = None
    for prescription_id in ids:

        def decide(prescription_id: str = prescription_id) -> int | None:
            prescription = svc.store.find(Prescription, UUID(prescription_id))
            if prescription is None or not act(prescription):
                return None
            return svc.store.save(prescription)

        try:
            saved = retrying(svc.store, decide)
        except CheckerUnavailableError:
            # One patient's unreadable allergies hold back only their own prescriptions; the answer names them.
            could_not_check.append(prescription_id)
            continue
        if saved is not None:
            changed.append(prescription_id)
            position = max(position or 0, saved)
    return SweepOutcome(
        answer_id, position, examined=len(ids), changed=tuple(changed), could_not_check=tuple(could_not_check)
    )


def recheck_prescriptions(svc: Services, cmd: RecheckPrescriptions, actor: Actor) -> SweepOutcome:
    require(actor.is_(Role.ADMIN), "Only an admin runs the re-check.")
    table = svc.interactions.current()
    now = svc.clock()

    def act(prescription: Prescription) -> bool:
        last = prescription.last_check
        if prescription.status not in (Status.ISSUED, Status.PARTIALLY_DISPENSED) or (
            last is not None and last.table_version == table.version
        ):
            return False
        result = check(table, prescription.medications, _allergies(svc, prescription.patient_id))
        prescription.recheck(result, now, actor.cause)
        return True

    return _sweep(svc, actor, "re-check", table.version, act)


def expire_prescriptions(svc: Services, cmd: ExpirePrescriptions, actor: Actor) -> SweepOutcome:
    now = svc.clock()
    return _sweep(svc, actor, "expiry sweep", "expiry", lambda p: p.expire(now, actor.cause))
