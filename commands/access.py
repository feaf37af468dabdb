"""Who may open a patient's medical record, and why: the one place the care-based access rules live.

- a patient: their own record, read-only;
- an auditor: every record, read-only;
- an admin: manages records (who, when, status) but reads no clinical content;
- a doctor: reads and writes while a care relationship, a current appointment or emergency access exists;
- anyone else, or a record that does not exist: "not found", so existence itself does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from commands.base import Actor, RecordNotFoundError, Services, require
from domain.care import Basis, PatientCare, care_id
from domain.patients import Patient
from domain.shared import Role


@dataclass(frozen=True)
class RecordAccess:
    patient_id: str
    basis: str
    clinical: bool
    may_write: bool


def _hidden(patient_id: str) -> RecordNotFoundError:
    return RecordNotFoundError(f"No patient {patient_id}.")


def doctor_basis(svc: Services, doctor_id: str, patient_id: str) -> Basis | None:
    """The strongest reason a doctor may open the record now (a relationship, then an appointment, then
    emergency access), read from the patient's care record in the store, if any."""
    care = svc.store.find(PatientCare, care_id(patient_id))
    return care.basis(doctor_id, svc.clock(), svc.post_visit_access) if care is not None else None


def record_access(svc: Services, actor: Actor, patient_id: str) -> RecordAccess:
    """The caller's access to a patient's record, under the patient's own id however the caller spelled it;
    "not found" when they have none."""
    patient = svc.store.find(Patient, patient_id)
    if patient is None:
        raise _hidden(patient_id)
    patient_id = str(patient.id)
    if actor.owns(Role.PATIENT, patient_id):
        return RecordAccess(patient_id, "self", clinical=True, may_write=False)
    if actor.is_(Role.AUDITOR):
        return RecordAccess(patient_id, "audit", clinical=True, may_write=False)
    if actor.is_(Role.ADMIN):
        return RecordAccess(patient_id, "admin", clinical=False, may_write=False)
    if actor.is_(Role.DOCTOR) and actor.profile_id is not None:
        basis = doctor_basis(svc, actor.profile_id, patient_id)
        if basis is not None:
            return RecordAccess(patient_id, basis.value, clinical=True, may_write=True)
    raise _hidden(patient_id)


def clinical_reader(svc: Services, actor: Actor, patient_id: str) -> RecordAccess:
    """Access to read clinical content; admins and strangers get "not found"."""
    access = record_access(svc, actor, patient_id)
    if not access.clinical:
        raise _hidden(patient_id)
    return access


def clinical_writer(svc: Services, actor: Actor, patient_id: str) -> RecordAccess:
    """Access to write clinical content: a treating doctor only. Others who may read it are refused (403)."""
    access = record_access(svc, actor, patient_id)
    require(access.may_write, "Only a doctor treating this patient writes to the medical record.")
    return access
