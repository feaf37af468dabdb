"""Care: a patient's care relationships, and emergency ("break-the-glass") openings of their record."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from api.care_schemas import (
    EmergencyAccessPublic,
    EmergencyAccessRequest,
    RelationshipEnd,
    RelationshipPublic,
    RelationshipStart,
)
from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, read_models, run_command
from api.json_body import StrictJSONRoute
from api.responses import Refusal, command, errors, query
from api.schemas import CommandResult
from commands import care as commands
from commands.access import record_access
from domain.shared import Role
from projections import queries

router = APIRouter(
    prefix="/patients/{patient_id}", tags=["care"], route_class=StrictJSONRoute, responses=errors(401, 403, 404, 503)
)
ReadCare = Annotated[Connection, Depends(read_models({"care"}))]
RELATIONSHIP_RULES = (
    Refusal("expires_at", "temporary care without an expiry, primary care with one, or an expiry that is not in the future"),
    Refusal("referring_doctor_id", "a referral without the referring doctor, or a referring doctor on another kind"),
    Refusal("doctor_id", "a doctor referring a patient to themselves"),
    Refusal("doctor_id", "no such doctor", "unknown_doctor"),
    Refusal("referring_doctor_id", "no such doctor", "unknown_doctor"),
)
END_RULES = (Refusal("relationship_id", "the patient has no such relationship", "unknown_relationship"),)


@router.post("/care-relationships", status_code=201, response_model=CommandResult, responses=command(refusals=RELATIONSHIP_RULES))
def start_relationship(
    patient_id: str, body: RelationshipStart, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Start a care relationship: admins any kind; a doctor caring for the patient refers them to another doctor."""
    cmd = commands.StartRelationship(
        patient_id=patient_id,
        doctor_id=str(body.doctor_id),
        kind=body.kind,
        reason=body.reason,
        referring_doctor_id=str(body.referring_doctor_id) if body.referring_doctor_id else None,
        expires_at=body.expires_at,
    )
    return run_command(m, request, actor.account_id, key, body, lambda: commands.start_relationship(m.services, cmd, actor), 201)


@router.post("/care-relationships/{relationship_id}/end", response_model=CommandResult, responses=command(refusals=END_RULES))
def end_relationship(
    patient_id: str,
    relationship_id: str,
    body: RelationshipEnd,
    actor: CurrentActor,
    m: MedledgerDep,
    request: Request,
    key: IdempotencyKey = None,
) -> Response:
    """End a care relationship with a reason: admins, its doctor, or the doctor who made the referral."""
    cmd = commands.EndRelationship(patient_id, relationship_id, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: commands.end_relationship(m.services, cmd, actor))


@router.get("/care-relationships", response_model=list[RelationshipPublic], responses=query(404))
def list_relationships(
    patient_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadCare,
    active: Annotated[bool, Query(description="Only the relationships in force now")] = False,
) -> list[dict[str, Any]]:
    """A patient's care relationships, for whoever may open the patient's record."""
    patient_id = record_access(m.services, actor, patient_id).patient_id
    return queries.list_care_relationships(conn, patient_id, m.services.clock(), active_only=active)


@router.post("/emergency-access", status_code=201, response_model=CommandResult, responses=command())
def break_glass(
    patient_id: str, body: EmergencyAccessRequest, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Break the glass: a doctor opens the record for a limited time, giving the reason; it is on the record for good."""
    cmd = commands.BreakGlass(patient_id, body.reason, body.minutes)
    return run_command(m, request, actor.account_id, key, body, lambda: commands.break_glass(m.services, cmd, actor), 201)


@router.get("/emergency-access", response_model=list[EmergencyAccessPublic], responses=query(404))
def list_emergency_access(patient_id: str, actor: CurrentActor, m: MedledgerDep, conn: ReadCare) -> list[dict[str, Any]]:
    """Who opened the record in an emergency: the patient, admins and auditors see all; doctors their own."""
    patient_id = record_access(m.services, actor, patient_id).patient_id
    doctor_id = actor.profile_id if actor.is_(Role.DOCTOR) else None
    return queries.list_emergency_access(conn, patient_id, m.services.clock(), doctor_id=doctor_id)
