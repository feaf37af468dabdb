"""Erasure commands: an admin requests a patient's erasure with its legal ground, a second admin approves or any
admin rejects it; approval destroys the patient's data key (and with it every record of theirs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from commands.base import Actor, Outcome, RecordNotFoundError, Services, change, require, retrying
from domain.erasure import LegalBasis, PatientErasure
from domain.patients import Patient
from domain.shared import Role


@dataclass(frozen=True)
class RequestErasure:
    patient_id: str
    legal_basis: LegalBasis
    reason: str


@dataclass(frozen=True)
class DecideErasure:
    patient_id: str
    note: str


def _require_admin(actor: Actor) -> None:
    require(actor.is_(Role.ADMIN), "Only admins decide on erasures.")


def request_erasure(svc: Services, cmd: RequestErasure, actor: Actor) -> Outcome:
    _require_admin(actor)
    request_id = str(uuid4())

    def decide() -> Outcome:
        patient, erasure = svc.store.find_all((Patient, cmd.patient_id), (PatientErasure, PatientErasure.create_id(cmd.patient_id)))
        if patient is None and erasure is None:
            raise RecordNotFoundError(f"No patient {cmd.patient_id}.")
        if erasure is None:
            erasure = PatientErasure(cmd.patient_id, actor.cause.as_dict())
        erasure.request(request_id, cmd.legal_basis, cmd.reason, svc.clock(), actor.cause)
        return Outcome(request_id, svc.store.save(erasure), created=True)

    return retrying(svc.store, decide)


def _erasure(svc: Services, patient_id: str) -> PatientErasure:
    erasure = svc.store.find(PatientErasure, PatientErasure.create_id(patient_id))
    if erasure is None:
        raise RecordNotFoundError(f"No erasure request for patient {patient_id}.")
    return erasure


def approve_erasure(svc: Services, cmd: DecideErasure, actor: Actor) -> Outcome:
    """Records the approval, then destroys the patient's data key and deletes their attachments and cached answers.
    Should this process stop in between, the projector's erasure follower finishes it (see projections.erasures)."""
    _require_admin(actor)
    outcome = change(svc.store, lambda: _erasure(svc, cmd.patient_id), lambda e: e.approve(cmd.note, svc.clock(), actor.cause))
    svc.eraser.erase(cmd.patient_id)
    return outcome


def reject_erasure(svc: Services, cmd: DecideErasure, actor: Actor) -> Outcome:
    _require_admin(actor)
    return change(svc.store, lambda: _erasure(svc, cmd.patient_id), lambda e: e.reject(cmd.note, svc.clock(), actor.cause))


def erasure_of(svc: Services, patient_id: str, actor: Actor) -> dict[str, Any]:
    """The patient's erasure requests and decisions, from the event store (admins and auditors)."""
    require(actor.is_(Role.ADMIN, Role.AUDITOR), "Only admins and auditors read erasure decisions.")
    view = _erasure(svc, patient_id).view()
    return {**view, "key_destroyed": svc.eraser.erased(patient_id)}
