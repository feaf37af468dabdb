"""Appointments: book, list and read, confirm, reschedule, cancel, complete, no-show and status correction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import Connection

from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, Paging, read_models, run_command
from api.json_body import StrictJSONRoute
from api.responses import Refusal, command, errors, query
from api.schemas import (
    SLOT_RULES,
    AppointmentBook,
    AppointmentCancel,
    AppointmentPublic,
    AppointmentReschedule,
    CommandResult,
    Moment,
    Page,
    StatusCorrection,
)
from commands import appointments as commands
from commands.base import Actor, Outcome, RecordNotFoundError, Services
from domain.appointment import Status
from domain.shared import InvalidInputError, Role
from infrastructure.bootstrap import Medledger
from projections import queries

router = APIRouter(prefix="/appointments", tags=["appointments"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadAppointments = Annotated[Connection, Depends(read_models({"appointments"}))]
BOOKING_RULES = (*SLOT_RULES, Refusal("patient_id", "left out by a caller who is not a patient"))
CORRECTION_RULES = (Refusal("status", "a status that cannot be set by correction (cancel or book instead)", "invalid_correction"),)


@router.post("", status_code=201, response_model=CommandResult, responses=command(404, refusals=BOOKING_RULES))
def book(body: AppointmentBook, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Book a slot: patients for themselves, admins for any patient (and may overbook with a reason)."""
    patient_id = body.patient_id or (actor.profile_id if actor.is_(Role.PATIENT) else None)
    if patient_id is None:
        raise InvalidInputError("Name the patient to book for.", field="body.patient_id")
    cmd = commands.BookAppointment(str(body.doctor_id), str(patient_id), body.start, body.overbook_reason)
    return run_command(m, request, actor.account_id, key, body, lambda: commands.book_appointment(m.services, cmd, actor), 201)


@router.get("", response_model=Page[AppointmentPublic], responses=query())
def list_appointments(
    actor: CurrentActor,
    conn: ReadAppointments,
    paging: Paging,
    doctor_id: str | None = None,
    patient_id: str | None = None,
    status: Status | None = None,
    start_from: Annotated[Moment | None, Query(alias="from", description="Starts at or after")] = None,
    start_to: Annotated[Moment | None, Query(alias="to", description="Starts before")] = None,
) -> queries.Page:
    """Appointments by patient, doctor, status and date range; patients and doctors see only their own."""
    if actor.is_(Role.PATIENT):
        if patient_id not in (None, actor.profile_id):
            return queries.Page([], 0, paging.page, paging.page_size)
        patient_id = actor.profile_id
    if actor.is_(Role.DOCTOR):
        if doctor_id not in (None, actor.profile_id):
            return queries.Page([], 0, paging.page, paging.page_size)
        doctor_id = actor.profile_id
    return queries.list_appointments(
        conn,
        doctor_id=doctor_id,
        patient_id=patient_id,
        status=status.value if status else None,
        start_from=start_from,
        start_to=start_to,
        page=paging.page,
        page_size=paging.page_size,
    )


@router.get("/{appointment_id}", response_model=AppointmentPublic, responses=query(404))
def get_appointment(appointment_id: str, actor: CurrentActor, conn: ReadAppointments) -> dict[str, Any]:
    """One appointment, for its patient, its doctor and staff who read everything."""
    appointment = queries.get_appointment(conn, appointment_id)
    if appointment is None or not commands.may_see_appointment(actor, appointment["doctor_id"], appointment["patient_id"]):
        raise RecordNotFoundError(f"No appointment {appointment_id}.")
    return appointment


def _act(
    m: Medledger,
    request: Request,
    actor: Actor,
    key: str | None,
    body: BaseModel | None,
    handler: Callable[[Services, Any, Actor], Outcome],
    cmd: Any,
) -> Response:
    return run_command(m, request, actor.account_id, key, body, lambda: handler(m.services, cmd, actor))


@router.post("/{appointment_id}/confirm", response_model=CommandResult, responses=command(404))
def confirm(appointment_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Confirm a booked appointment (its doctor or an admin)."""
    cmd = commands.ConfirmAppointment(appointment_id)
    return _act(m, request, actor, key, None, commands.confirm_appointment, cmd)


@router.post("/{appointment_id}/reschedule", response_model=CommandResult, responses=command(404, refusals=SLOT_RULES))
def reschedule(
    appointment_id: str, body: AppointmentReschedule, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Move to another slot atomically: the old slot is freed only if the new one is taken."""
    cmd = commands.RescheduleAppointment(appointment_id, body.start, body.reason)
    return _act(m, request, actor, key, body, commands.reschedule_appointment, cmd)


@router.post("/{appointment_id}/cancel", response_model=CommandResult, responses=command(404))
def cancel(
    appointment_id: str, body: AppointmentCancel, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Cancel with a reason: patients up to the cut-off before the start, doctors and admins any time."""
    cmd = commands.CancelAppointment(appointment_id, body.reason)
    return _act(m, request, actor, key, body, commands.cancel_appointment, cmd)


@router.post("/{appointment_id}/complete", response_model=CommandResult, responses=command(404))
def complete(appointment_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Record that the appointment took place (its doctor or an admin, once it has started)."""
    cmd = commands.CompleteAppointment(appointment_id)
    return _act(m, request, actor, key, None, commands.complete_appointment, cmd)


@router.post("/{appointment_id}/no-show", response_model=CommandResult, responses=command(404))
def no_show(appointment_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Record that the patient did not come (its doctor or an admin, once it has started)."""
    cmd = commands.MarkNoShow(appointment_id)
    return _act(m, request, actor, key, None, commands.mark_no_show, cmd)


@router.post("/{appointment_id}/status-correction", response_model=CommandResult, responses=command(404, refusals=CORRECTION_RULES))
def correct_status(
    appointment_id: str, body: StatusCorrection, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Correct a wrongly set status with a reason; the correction is itself recorded, nothing is erased."""
    cmd = commands.CorrectStatus(appointment_id, body.status, body.reason)
    return _act(m, request, actor, key, body, commands.correct_status, cmd)
