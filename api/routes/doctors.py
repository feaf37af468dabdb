"""Doctors: directory search, profiles, weekly availability, leave, free slots and a doctor's day."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, Paging, read_models, run_command
from api.json_body import StrictJSONRoute
from api.responses import Refusal, command, errors, query
from api.schemas import (
    Availability,
    CalendarDay,
    CommandResult,
    DoctorDay,
    DoctorProfileUpdate,
    DoctorPublic,
    LeaveCancel,
    LeaveRequest,
    Page,
    Slot,
    search_text,
)
from commands import profiles
from commands.base import RecordNotFoundError, require
from domain.doctors import WeeklyAvailability
from domain.shared import InvalidInputError, Role
from projections import queries

router = APIRouter(prefix="/doctors", tags=["doctors"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadDoctors = Annotated[Connection, Depends(read_models({"doctors"}))]
ReadSchedule = Annotated[Connection, Depends(read_models({"doctors", "appointments", "patients"}))]
MAX_RANGE_DAYS = 31
AVAILABILITY_RULES = (
    Refusal("periods", "a period that does not end after it starts, overlaps another of its day, or holds no slot", "invalid_availability"),
)
LEAVE_RULES = (Refusal("day", "a day that is already over", "leave_in_past"),)
RANGE_RULES = (Refusal("to", f"before from, or more than {MAX_RANGE_DAYS} days on"),)


def _doctor(conn: Connection, doctor_id: str) -> dict[str, Any]:
    doctor = queries.get_doctor(conn, doctor_id)
    if doctor is None:
        raise RecordNotFoundError(f"No doctor {doctor_id}.")
    return doctor


def _range(first: date, last: date | None) -> date:
    last = last or first
    if last < first:
        raise InvalidInputError("'to' must not be before 'from'.", field="query.to")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise InvalidInputError(f"Ask for at most {MAX_RANGE_DAYS} days at a time.", field="query.to")
    return last


@router.get("", response_model=Page[DoctorPublic], responses=query())
def list_doctors(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadSchedule,
    paging: Paging,
    specialty: Annotated[search_text(100) | None, Query()] = None,
    name: Annotated[search_text(200) | None, Query(description="Part of the doctor's name")] = None,
    available_on: Annotated[CalendarDay | None, Query(description="Only doctors with a free slot on this day")] = None,
) -> queries.Page:
    """Search doctors by specialty, name and availability on a date."""
    return queries.list_doctors(
        conn,
        specialty=specialty,
        name=name,
        available_on=available_on,
        now=m.services.clock(),
        page=paging.page,
        page_size=paging.page_size,
    )


@router.get("/{doctor_id}", response_model=DoctorPublic, responses=query(404))
def get_doctor(doctor_id: str, actor: CurrentActor, conn: ReadDoctors) -> dict[str, Any]:
    """One doctor's profile and weekly availability."""
    return _doctor(conn, doctor_id)


@router.patch("/{doctor_id}", response_model=CommandResult, responses=command(404))
def update_doctor(
    doctor_id: str, body: DoctorProfileUpdate, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Change profile fields (the doctor themself, or an admin)."""
    cmd = profiles.UpdateDoctorProfile(doctor_id, body.changes())
    return run_command(m, request, actor.account_id, key, body, lambda: profiles.update_doctor_profile(m.services, cmd, actor))


@router.put("/{doctor_id}/availability", response_model=CommandResult, responses=command(404, refusals=AVAILABILITY_RULES))
def set_availability(
    doctor_id: str, body: Availability, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Replace the weekly availability: working periods per weekday, slot length and time zone."""
    availability = WeeklyAvailability(
        timezone=body.timezone,
        slot_minutes=body.slot_minutes,
        periods={day: tuple(spans) for day, spans in body.periods.items()},
    )
    cmd = profiles.SetAvailability(doctor_id, availability)
    return run_command(m, request, actor.account_id, key, body, lambda: profiles.set_availability(m.services, cmd, actor))


@router.post("/{doctor_id}/leave", response_model=CommandResult, responses=command(404, refusals=LEAVE_RULES))
def take_leave(
    doctor_id: str, body: LeaveRequest, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Take a day of leave; refused while that day still has bookings."""
    cmd = profiles.TakeLeave(doctor_id, body.day, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: profiles.take_leave(m.services, cmd, actor))


@router.post("/{doctor_id}/leave/{day}/cancel", response_model=CommandResult, responses=command(404))
def cancel_leave(
    doctor_id: str, day: CalendarDay, body: LeaveCancel, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Cancel a day of leave."""
    cmd = profiles.CancelLeave(doctor_id, day, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: profiles.cancel_leave(m.services, cmd, actor))


@router.get("/{doctor_id}/leave", responses=query(404, refusals=RANGE_RULES))
def list_leave(
    doctor_id: str,
    actor: CurrentActor,
    conn: ReadDoctors,
    first: Annotated[CalendarDay, Query(alias="from")],
    last: Annotated[CalendarDay | None, Query(alias="to")] = None,
) -> list[dict[str, Any]]:
    """The doctor's days of leave in a date range."""
    _doctor(conn, doctor_id)
    days = queries.leave_days(conn, doctor_id, first, _range(first, last))
    return [{"day": day, "reason": reason} for day, reason in sorted(days.items())]


@router.get("/{doctor_id}/slots", response_model=list[Slot], responses=query(404, refusals=RANGE_RULES))
def free_slots(
    doctor_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadSchedule,
    first: Annotated[CalendarDay, Query(alias="from", description="First local day")],
    last: Annotated[CalendarDay | None, Query(alias="to", description="Last local day (inclusive), at most 31 days on")] = None,
) -> list[dict[str, Any]]:
    """Free slots of a doctor over a date range (doctor's local days), excluding leave and the past."""
    doctor = _doctor(conn, doctor_id)
    return queries.free_slots(conn, doctor, first, _range(first, last), m.services.clock())


@router.get("/{doctor_id}/day", response_model=DoctorDay, responses=query(404))
def doctor_day(
    doctor_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadSchedule,
    day: Annotated[CalendarDay | None, Query(description="Local day; today when omitted")] = None,
) -> dict[str, Any]:
    """A doctor's day: appointments with patient names, leave and free slots (the doctor, admins, auditors)."""
    require(
        actor.is_(Role.ADMIN, Role.AUDITOR) or actor.owns(Role.DOCTOR, doctor_id),
        "Only this doctor, admins and auditors see a doctor's day.",
    )
    doctor = _doctor(conn, doctor_id)
    now = m.services.clock()
    if day is None:
        zone = WeeklyAvailability.from_dict(doctor["availability"]).zone if doctor["availability"] else None
        day = now.astimezone(zone).date()
    return queries.doctor_day(conn, doctor, day, now)

