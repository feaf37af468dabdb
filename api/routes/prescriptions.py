"""Prescriptions: write, revise, check, issue, dispense, cancel, renew, the expiry and re-check sweeps, read, search, and reminders."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, Paging, read_models, run_handler
from api.json_body import StrictJSONRoute
from api.prescription_schemas import (
    PrescriptionCancel,
    PrescriptionDispense,
    PrescriptionIssue,
    PrescriptionItemsUpdate,
    PrescriptionPublic,
    PrescriptionRenew,
    PrescriptionWrite,
    ReminderPublic,
    SafetyCheckResult,
)
from api.responses import Refusal, command, errors, query
from api.schemas import CommandResult, DayOrMoment, Moment, Page, SweepResult, Text
from commands import prescriptions as commands
from commands.access import clinical_reader
from commands.base import RecordNotFoundError
from commands.read_log import record_reads, search_rows
from domain.prescription import Status
from domain.read_log import Row, Shown
from domain.shared import ForbiddenError, InvalidInputError, Role
from projections import prescriptions as records

router = APIRouter(tags=["prescriptions"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadPrescriptions = Annotated[Connection, Depends(read_models({"prescriptions"}))]
SearchPrescriptions = Annotated[Connection, Depends(read_models({"prescriptions", "care"}))]
MAX_REMINDER_WINDOW = timedelta(days=31)
ITEM_RULES = (Refusal("item_id", "an item id given to two items"),)
DISPENSE_RULES = (Refusal("item_id", "the prescription has no such item", "unknown_item"),)
RENEW_RULES = (
    Refusal("consultation_id", "a consultation with another patient, or none when renewing another doctor's prescription"),
)
WINDOW_RULES = (Refusal("to", "not after from, or more than 31 days after it"),)


@router.post("/prescriptions", status_code=201, response_model=CommandResult, responses=command(404, refusals=ITEM_RULES))
def write(body: PrescriptionWrite, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Write a draft prescription at a consultation (its doctor, while treating the patient)."""
    cmd = commands.WritePrescription(str(body.consultation_id), body.specs(), body.timezone)
    return run_handler(m, request, actor, key, body, commands.write_prescription, cmd, 201)


@router.post("/prescriptions/recheck", response_model=SweepResult, responses=command())
def recheck(actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Re-check active prescriptions against the current interaction table and flag newly found hazards (admins)."""
    return run_handler(m, request, actor, key, None, commands.recheck_prescriptions, commands.RecheckPrescriptions())


@router.post("/prescriptions/expire", response_model=SweepResult, responses=command())
def expire(actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Expire active prescriptions past the last day they are valid (admins)."""
    return run_handler(m, request, actor, key, None, commands.expire_prescriptions, commands.ExpirePrescriptions())


@router.get("/prescriptions", response_model=Page[PrescriptionPublic], responses=query())
def search(
    actor: CurrentActor,
    conn: SearchPrescriptions,
    m: MedledgerDep,
    paging: Paging,
    patient_id: str | None = None,
    doctor_id: str | None = None,
    status: Status | None = None,
    medication: Annotated[Text | None, Query(description="Part of a medication's name")] = None,  # type: ignore[valid-type]
    written_from: Annotated[Moment | None, Query(alias="from", description="Written at or after")] = None,
    written_to: Annotated[Moment | None, Query(alias="to", description="Written before")] = None,
) -> dict[str, Any]:
    """Search prescriptions, newest first: patients see their own, doctors those of patients in their care,
    admins and auditors all; analysts none."""
    if actor.is_(Role.ANALYST):
        raise ForbiddenError("Analysts do not read medical records.")
    in_care_of = None
    if actor.is_(Role.PATIENT):
        if patient_id not in (None, actor.profile_id):
            return {"items": [], "total": 0, "page": paging.page, "page_size": paging.page_size}
        patient_id = actor.profile_id
    elif actor.is_(Role.DOCTOR):
        in_care_of = (actor.profile_id or "", m.services.clock(), timedelta(hours=m.settings.post_visit_access_hours))
    found = records.search_prescriptions(
        conn,
        patient_id=patient_id,
        doctor_id=doctor_id,
        status=status.value if status else None,
        medication=medication,
        written_from=written_from,
        written_to=written_to,
        in_care_of=in_care_of,
        page=paging.page,
        page_size=paging.page_size,
    )
    shown = search_rows(m.services, actor, Shown.PRESCRIPTION, [(item["patient_id"], item["id"]) for item in found.items])
    record_reads(m.services, actor, "prescription search", shown)
    return {"items": found.items, "total": found.total, "page": found.page, "page_size": found.page_size}


@router.get("/prescriptions/{prescription_id}", response_model=PrescriptionPublic, responses=query(404))
def get_prescription(prescription_id: str, actor: CurrentActor, m: MedledgerDep, conn: ReadPrescriptions) -> dict[str, Any]:
    """One prescription with its items, dispensings and every safety check as shown to the doctor."""
    found = records.get_prescription(conn, prescription_id)
    access = commands.readable(m.services, actor, found["patient_id"]) if found is not None else None
    if found is None or access is None:
        raise RecordNotFoundError(f"No prescription {prescription_id}.")
    record_reads(m.services, actor, "prescription", [Row(access.patient_id, Shown.PRESCRIPTION, found["id"], access.basis)])
    return found


@router.put("/prescriptions/{prescription_id}/items", response_model=CommandResult, responses=command(404, refusals=ITEM_RULES))
def revise(
    prescription_id: str, body: PrescriptionItemsUpdate, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Replace the items of a draft (its prescribing doctor)."""
    cmd = commands.ReviseItems(prescription_id, body.specs())
    return run_handler(m, request, actor, key, body, commands.revise_items, cmd)


@router.post("/prescriptions/{prescription_id}/check", response_model=SafetyCheckResult, responses=command(404))
def check(prescription_id: str, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Check a draft against the patient's allergies and the interaction table; answers the recorded check with every finding."""
    return run_handler(m, request, actor, key, None, commands.check_prescription, commands.CheckPrescription(prescription_id))


@router.post("/prescriptions/{prescription_id}/issue", response_model=CommandResult, responses=command(404))
def issue(
    prescription_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    request: Request,
    body: PrescriptionIssue | None = None,
    key: IdempotencyKey = None,
) -> Response:
    """Issue after a fresh safety check: severe findings answer 409 interaction_blocked unless overridden with a reason;
    a checker that cannot run answers 503 checker_unavailable. Either way nothing is recorded."""
    cmd = commands.IssuePrescription(prescription_id, body.override_reason if body else None)
    return run_handler(m, request, actor, key, body, commands.issue_prescription, cmd)


@router.post("/prescriptions/{prescription_id}/dispense", response_model=CommandResult, responses=command(404, refusals=DISPENSE_RULES))
def dispense(
    prescription_id: str, body: PrescriptionDispense, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Dispense part or all of what remains of an item (admins, at the dispensing desk); send an Idempotency-Key."""
    cmd = commands.DispensePrescription(prescription_id, body.item_id, body.quantity)
    return run_handler(m, request, actor, key, body, commands.dispense_prescription, cmd)


@router.post("/prescriptions/{prescription_id}/cancel", response_model=CommandResult, responses=command(404))
def cancel(
    prescription_id: str, body: PrescriptionCancel, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Cancel a draft or an active prescription with a reason (an admin or the prescribing doctor)."""
    cmd = commands.CancelPrescription(prescription_id, body.reason)
    return run_handler(m, request, actor, key, body, commands.cancel_prescription, cmd)


@router.post("/prescriptions/{prescription_id}/renew", status_code=201, response_model=CommandResult, responses=command(404, refusals=RENEW_RULES))
def renew(
    prescription_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    request: Request,
    body: PrescriptionRenew | None = None,
    key: IdempotencyKey = None,
) -> Response:
    """Renew into a new draft linked to this prescription (a doctor treating the patient); answers the new id."""
    cmd = commands.RenewPrescription(prescription_id, str(body.consultation_id) if body and body.consultation_id else None)
    return run_handler(m, request, actor, key, body, commands.renew_prescription, cmd, 201)


@router.get("/patients/{patient_id}/reminders", response_model=list[ReminderPublic], responses=query(404, refusals=WINDOW_RULES))
def reminders(
    patient_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadPrescriptions,
    start: Annotated[
        DayOrMoment | None,
        Query(alias="from", description="Due at or after this date-time (with its offset), or from the start of this date (default: now)"),
    ] = None,
    end: Annotated[
        DayOrMoment | None,
        Query(alias="to", description="Due before this date-time, or through the end of this date (default: a day after from, or from's whole date)"),
    ] = None,
) -> list[dict[str, Any]]:
    """The patient's doses due in a window of at most 31 days (the patient, treating doctors, auditors).

    A plain date is a whole day in each prescription's own time zone, where its doses' local times are."""
    access = clinical_reader(m.services, actor, patient_id)
    start = start or m.services.clock()
    if end is None:
        end = start if not isinstance(start, datetime) else start + timedelta(days=1)
    opens, closes = _reach(start, at_end=False), _reach(end, at_end=True)
    if closes <= opens:
        raise InvalidInputError("to must be after from.", field="to")
    if closes - opens > MAX_REMINDER_WINDOW:
        raise InvalidInputError("A reminder window spans at most 31 days.", field="to")
    doses = [dose.as_dict() for dose in records.reminders(conn, access.patient_id, start, end)]
    shown = [Row(access.patient_id, Shown.PRESCRIPTION, prescription, access.basis) for prescription in dict.fromkeys(d["prescription_id"] for d in doses)]
    record_reads(m.services, actor, "reminders", shown)
    return doses


def _reach(bound: date, at_end: bool) -> datetime:
    """A bound as an instant, to compare and measure a window: a date counts as its UTC day, an end date through its end."""
    if isinstance(bound, datetime):
        return bound
    return datetime.combine(bound + timedelta(days=1) if at_end else bound, time(0), tzinfo=timezone.utc)
