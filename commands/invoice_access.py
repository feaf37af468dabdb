"""Who may read billing: the one place its access rules live.

- a patient: their own invoices and statement;
- a doctor: the invoices that name them as the invoice's doctor;
- admins and auditors: every invoice, and the clinic's books (receivables, cash-up, exports);
- analysts: no billing at all (403);
- anyone else's invoice, or none: "not found", so existence itself does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from commands.base import Actor, RecordNotFoundError, Services
from domain.patients import Patient
from domain.shared import ForbiddenError, Role

BASIS = {Role.PATIENT: "self", Role.DOCTOR: "invoice_doctor", Role.ADMIN: "admin", Role.AUDITOR: "audit"}


@dataclass(frozen=True)
class InvoiceScope:
    """What a caller's lists are narrowed to: one patient's, one doctor's, or (both None) every invoice."""

    patient_id: str | None
    doctor_id: str | None
    basis: str

    def narrow(self, patient_id: str | None, doctor_id: str | None) -> tuple[str | None, str | None] | None:
        """The filters a search runs with, or None when the caller asked for what they may not see (an empty answer)."""
        if self.patient_id is not None and patient_id not in (None, self.patient_id):
            return None
        if self.doctor_id is not None and doctor_id not in (None, self.doctor_id):
            return None
        return self.patient_id or patient_id, self.doctor_id or doctor_id


def billing_scope(actor: Actor) -> InvoiceScope:
    if actor.is_(Role.PATIENT):
        return InvoiceScope(actor.profile_id or "", None, BASIS[Role.PATIENT])
    if actor.is_(Role.DOCTOR):
        return InvoiceScope(None, actor.profile_id or "", BASIS[Role.DOCTOR])
    if actor.is_(Role.ADMIN, Role.AUDITOR):
        return InvoiceScope(None, None, BASIS[Role(actor.role)])
    raise ForbiddenError("Analysts do not read billing.")


def invoice_reader(actor: Actor, invoice_id: str, invoice: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The invoice (a read model's document) and the caller's basis for reading it; "not found" when they have none."""
    scope = billing_scope(actor)
    if invoice is None or (
        (scope.patient_id is not None and invoice["patient_id"] != scope.patient_id)
        or (scope.doctor_id is not None and invoice["doctor_id"] != scope.doctor_id)
    ):
        raise RecordNotFoundError(f"No invoice {invoice_id}.")
    return invoice, scope.basis


def require_bookkeeper(actor: Actor) -> None:
    """The clinic's books (receivables, cash-up, exports): admins and auditors."""
    if not actor.is_(Role.ADMIN, Role.AUDITOR):
        raise ForbiddenError("Only admins and auditors read the clinic's books.")


def statement_reader(svc: Services, actor: Actor, patient_id: str) -> tuple[str, str, str | None]:
    """(the patient's own id, the caller's basis, the doctor a statement is narrowed to) for reading a patient's
    statement: the patient, admins and auditors the whole of it; a doctor the invoices naming them, if any."""
    scope = billing_scope(actor)
    patient = svc.store.find(Patient, patient_id)
    if patient is None or (scope.patient_id is not None and str(patient.id) != scope.patient_id):
        raise RecordNotFoundError(f"No patient {patient_id}.")
    return str(patient.id), scope.basis, scope.doctor_id
