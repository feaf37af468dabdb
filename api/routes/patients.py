"""Patients: a patient's own profile, staff search, and doctors' view of the patients in their care."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, Paging, read_models, run_command
from api.schemas import CommandResult, Page, PatientProfileUpdate, PatientPublic
from commands import profiles
from commands.base import Actor, RecordNotFoundError, require
from domain.shared import Role
from projections import queries

router = APIRouter(prefix="/patients", tags=["patients"])
ReadPatients = Annotated[Connection, Depends(read_models({"patients", "appointments"}))]


def may_read_patient(conn: Connection, actor: Actor, patient_id: str) -> bool:
    """The patient, admins and auditors; a doctor only for patients in their care."""
    if actor.is_(Role.ADMIN, Role.AUDITOR) or actor.owns(Role.PATIENT, patient_id):
        return True
    return actor.is_(Role.DOCTOR) and actor.profile_id is not None and queries.is_patient_of(conn, actor.profile_id, patient_id)


@router.get("", response_model=Page[PatientPublic])
def list_patients(
    actor: CurrentActor,
    conn: ReadPatients,
    paging: Paging,
    name: Annotated[str | None, Query(max_length=200, description="Part of the patient's name")] = None,
) -> queries.Page:
    """Search patients by name: admins and auditors see all, doctors the patients in their care."""
    require(actor.is_(Role.ADMIN, Role.AUDITOR, Role.DOCTOR), "Only clinical and admin staff search patients.")
    of_doctor = actor.profile_id if actor.is_(Role.DOCTOR) else None
    return queries.list_patients(conn, name=name, of_doctor=of_doctor, page=paging.page, page_size=paging.page_size)


@router.get("/{patient_id}", response_model=PatientPublic)
def get_patient(patient_id: str, actor: CurrentActor, conn: ReadPatients) -> dict[str, Any]:
    """One patient's profile, for those who may see it."""
    patient = queries.get_patient(conn, patient_id)
    if patient is None or not may_read_patient(conn, actor, patient_id):
        raise RecordNotFoundError(f"No patient {patient_id}.")
    return patient


@router.patch("/{patient_id}", response_model=CommandResult)
def update_patient(
    patient_id: str, body: PatientProfileUpdate, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Change profile fields (the patient themself, or an admin)."""
    cmd = profiles.UpdatePatientProfile(patient_id, body.changes())
    return run_command(m, request, actor.account_id, key, body, lambda: profiles.update_patient_profile(m.services, cmd, actor))
