"""The read log: who has read a patient's record (the patient, auditors) and what a user has read (auditors)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import Connection

from api.deps import CurrentActor, MedledgerDep, Paging, read_models
from api.json_body import StrictJSONRoute
from api.responses import Refusal, errors, query
from api.schemas import Moment, Page
from commands.read_log import patient_log_reader, record_reads, require_auditor
from domain.read_log import Row, Shown
from domain.shared import InvalidInputError
from projections.read_log import reads

router = APIRouter(tags=["read log"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadLogModel = Annotated[Connection, Depends(read_models({"reads"}))]
WINDOW_RULES = (Refusal("to", "a to that is not after from"),)


class ReadPublic(BaseModel):
    read_at: datetime
    patient_id: str
    shown: Shown
    record_id: str
    basis: str
    emergency: bool
    reader_id: str
    reader_role: str
    action: str
    correlation_id: str


def _window(read_from: datetime | None, read_to: datetime | None) -> None:
    if read_from is not None and read_to is not None and read_to <= read_from:
        raise InvalidInputError("to must be after from.", field="to")


@router.get("/patients/{patient_id}/reads", response_model=Page[ReadPublic], responses=query(404, refusals=WINDOW_RULES))
def reads_of_patient(
    patient_id: str,
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadLogModel,
    paging: Paging,
    read_from: Annotated[Moment | None, Query(alias="from", description="Read at or after")] = None,
    read_to: Annotated[Moment | None, Query(alias="to", description="Read before")] = None,
) -> Page[ReadPublic]:
    """Who has read this patient's record, newest first: each read with who, role, what, when and the basis of
    access (emergency reads flagged). The patient themself and auditors; this read is logged too."""
    access = patient_log_reader(m.services, actor, patient_id)
    _window(read_from, read_to)
    found = reads(conn, patient_id=access.patient_id, read_from=read_from, read_to=read_to, page=paging.page, page_size=paging.page_size)
    record_reads(m.services, actor, "read log of a patient", [Row(access.patient_id, Shown.READ_LOG, access.patient_id, access.basis)])
    return Page(items=found.items, total=found.total, page=found.page, page_size=found.page_size)


@router.get("/audit/reads", response_model=Page[ReadPublic], responses=query(refusals=WINDOW_RULES))
def reads_by_reader(
    actor: CurrentActor,
    m: MedledgerDep,
    conn: ReadLogModel,
    paging: Paging,
    reader_id: Annotated[str, Query(min_length=1, max_length=64, description="The reader's account id")],
    read_from: Annotated[Moment | None, Query(alias="from", description="Read at or after")] = None,
    read_to: Annotated[Moment | None, Query(alias="to", description="Read before")] = None,
) -> Page[ReadPublic]:
    """What one user has read, newest first (auditors); this read is logged too, once for each patient shown."""
    require_auditor(actor)
    _window(read_from, read_to)
    found = reads(conn, reader_id=reader_id, read_from=read_from, read_to=read_to, page=paging.page, page_size=paging.page_size)
    shown = [Row(item["patient_id"], Shown.READ_LOG, reader_id, "audit") for item in found.items]
    record_reads(m.services, actor, "read log of a reader", shown)
    return Page(items=found.items, total=found.total, page=found.page, page_size=found.page_size)
