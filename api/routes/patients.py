"""Patients: a patient's own profile, staff search, and doctors' view of the patients in their care."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, Paging, read_models, run_command
from api.json_body import StrictJSONRoute
from api.responses import command, errors, query
from api.schemas import BIRTH_DATE_RULE, CalendarDay, CommandResult, Page, PatientProfileUpdate, PatientPublic, search_text
from commands import profiles
from commands.access import record_access
from commands.base import Actor, RecordNotFoundError, require
from domain.shared import Role
from infrastructure.bootstrap import Medledger
from projections import queries

router = APIRouter(prefix="/patients", tags=["patients"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadPatients = Annotated[Connection, Depends(read_models({"patients", "care"}))]
PhoneDigits = Query(
    max_length=40,
    pattern=r"^[0-9+ ().-]*[0-9][0-9+ ().-]*$",
    description="Part of the phone number; only its digits are compared",
)


def care_window(m: Medledger, actor: Actor) -> queries.CareWindow | None:
    """For a doctor, the view of the patients they may open now; None for anyone else."""
    if not actor.is_(Role.DOCTOR) or actor.profile_id is None:
        return None
    return queries.CareWindow(actor.profile_id, m.services.clock(), timedelta(hours=m.settings.post_visit_access_hours))


@router.get("", response_model=Page[PatientPublic], responses=query())
def list_patients(
    actor: CurrentActor,
    conn: ReadPatients,
    paging: Paging,
    m: MedledgerDep,
    name: Annotated[search_text(200) | None, Query(description="Part of the patient's name")] = None,
    date_of_birth: Annotated[CalendarDay | None, Query(description="The patient's date of birth")] = None,
    phone: Annotated[str | None, PhoneDigits] = None,
) -> queries.Page:
    """Search patients by name, date of birth and phone: admins and auditors see all, doctors the patients they may open."""
    require(actor.is_(Role.ADMIN, Role.AUDITOR, Role.DOCTOR), "Only clinical and admin staff search patients.")
    return queries.list_patients(
        conn,
        name=name,
        date_of_birth=date_of_birth,
        phone=phone,
        of_doctor=care_window(m, actor),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.get("/{patient_id}", response_model=PatientPublic, responses=query(404))
def get_patient(patient_id: str, actor: CurrentActor, conn: ReadPatients, m: MedledgerDep) -> dict[str, Any]:
    """One patient's profile: the patient, admins, auditors, and a doctor while they may open the record."""
    access = record_access(m.services, actor, patient_id)
    patient = queries.get_patient(conn, access.patient_id)
    if patient is None:
        raise RecordNotFoundError(f"No patient {patient_id}.")
    return patient


@router.patch("/{patient_id}", response_model=CommandResult, responses=command(404, refusals=(BIRTH_DATE_RULE,)))
def update_patient(
    patient_id: str, body: PatientProfileUpdate, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Change profile fields (the patient themself, or an admin)."""
    cmd = profiles.UpdatePatientProfile(patient_id, body.changes())
    return run_command(m, request, actor.account_id, key, body, lambda: profiles.update_patient_profile(m.services, cmd, actor))
