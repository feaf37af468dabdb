"""Erasure: a patient's data erased on a reviewed decision (an admin requests, a second admin approves)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, Paging, read_models, run_command
from api.json_body import StrictJSONRoute
from api.responses import command, errors, query
from api.schemas import CommandResult, Page, Strict, _bounded
from commands import erasure as commands
from commands.base import require
from domain.erasure import MAX_TEXT_LENGTH, MIN_REASON_LENGTH, ErasureStatus, LegalBasis
from domain.shared import Role
from projections.erasures import list_erasure_requests

router = APIRouter(tags=["erasure"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadErasures = Annotated[Connection, Depends(read_models({"erasures"}))]
Text = _bounded(MAX_TEXT_LENGTH, minimum=MIN_REASON_LENGTH, multiline=True)


class ErasureRequestBody(Strict):
    legal_basis: LegalBasis = Field(description="The ground of Art. 17(1) GDPR the patient invokes: (a) to (f).")
    reason: Text = Field(description="What the patient asked and why it applies.")  # type: ignore[valid-type]


class ApprovalBody(Strict):
    note: Text = Field(description="Why no exemption of Art. 17(3) (e.g. a duty to keep medical records) applies.")  # type: ignore[valid-type]


class RejectionBody(Strict):
    reason: Text = Field(description="Why the data must be kept (e.g. the retention period of medical records).")  # type: ignore[valid-type]


class ErasureRequestPublic(BaseModel):
    request_id: str
    legal_basis: LegalBasis
    reason: str
    requested_by: str
    requested_at: datetime
    decision: Literal["approved", "rejected"] | None
    decided_by: str | None
    decided_at: datetime | None
    decision_note: str | None


class ErasurePublic(BaseModel):
    patient_id: str
    status: ErasureStatus = Field(description="pending: waiting for a second admin; erased: approved and carried out.")
    version: int
    key_destroyed: bool = Field(description="Whether the patient's data key is destroyed (their data reads as erased).")
    requests: list[ErasureRequestPublic] = Field(description="Newest first.")


class ErasureListItem(BaseModel):
    request_id: str
    patient_id: str
    status: ErasureStatus
    legal_basis: LegalBasis
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None


@router.post("/patients/{patient_id}/erasure-requests", status_code=201, response_model=CommandResult, responses=command(404))
def request_erasure(
    patient_id: str, body: ErasureRequestBody, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Request the erasure of a patient's data with its legal ground (admins). Nothing is erased until a second
    admin approves; 409 while another request of theirs waits or once they are erased."""
    cmd = commands.RequestErasure(patient_id, body.legal_basis, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: commands.request_erasure(m.services, cmd, actor), 201)


@router.post("/patients/{patient_id}/erasure/approve", response_model=CommandResult, responses=command(404))
def approve_erasure(
    patient_id: str, body: ApprovalBody, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Approve the waiting request (an admin other than the one who requested it: 403 `second_admin_required`).
    Final: the patient's data key is destroyed, and every record of theirs reads as erased from then on."""
    cmd = commands.DecideErasure(patient_id, body.note)
    return run_command(m, request, actor.account_id, key, body, lambda: commands.approve_erasure(m.services, cmd, actor))


@router.post("/patients/{patient_id}/erasure/reject", response_model=CommandResult, responses=command(404))
def reject_erasure(
    patient_id: str, body: RejectionBody, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None
) -> Response:
    """Reject (or, by its requester, withdraw) the waiting request with a reason (admins)."""
    cmd = commands.DecideErasure(patient_id, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: commands.reject_erasure(m.services, cmd, actor))


@router.get("/patients/{patient_id}/erasure", response_model=ErasurePublic, responses=errors(404))
def erasure_of(patient_id: str, actor: CurrentActor, m: MedledgerDep) -> dict[str, Any]:
    """Every erasure request of the patient and its decision, from the event store (admins, auditors)."""
    return commands.erasure_of(m.services, patient_id, actor)


@router.get("/erasure-requests", response_model=Page[ErasureListItem], responses=query())
def erasure_requests(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadErasures,
    paging: Paging,
    status: Annotated[ErasureStatus | None, Query(description="Only requests in this status (pending: to decide).")] = None,
) -> Page[ErasureListItem]:
    """Erasure requests, newest first (admins, auditors)."""
    require(actor.is_(Role.ADMIN, Role.AUDITOR), "Only admins and auditors read erasure decisions.")
    found = list_erasure_requests(conn, status.value if status else None, paging.page, paging.page_size)
    return Page(items=found.items, total=found.total, page=found.page, page_size=found.page_size)
