"""The patient chart: the first screen of a medical record, for those who may read it clinically."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import Connection

from api.deps import CurrentActor, MedledgerDep, Paging, read_models
from api.json_body import StrictJSONRoute
from api.responses import errors, query
from commands.access import clinical_reader
from commands.base import RecordNotFoundError
from commands.read_log import read_recorded
from domain.read_log import Shown
from projections.chart import patient_chart

router = APIRouter(prefix="/patients", tags=["chart"], route_class=StrictJSONRoute, responses=errors(401, 403, 404, 503))
ReadChart = Annotated[Connection, Depends(read_models({"patients", "consultations", "prescriptions"}))]


class TimelinePage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    page: int
    page_size: int


class Chart(BaseModel):
    patient_id: str
    demographics: dict[str, Any]
    allergies: list[Any]
    active_problems: list[dict[str, Any]]
    active_prescriptions: list[dict[str, Any]]
    vitals: dict[str, Any]
    timeline: TimelinePage


@router.get("/{patient_id}/chart", response_model=Chart, responses=query(404))
def get_chart(patient_id: str, actor: CurrentActor, m: MedledgerDep, conn: ReadChart, paging: Paging) -> dict[str, Any]:
    """Demographics, allergies, active problems, active prescriptions, latest vitals with trend, and the
    consultation timeline (newest first, paginated with page/page_size) with notes and attachments.

    The patient, auditors and doctors with a care relationship, a current appointment or emergency access;
    anyone else gets 404. The read is in the read log before the chart is answered.
    """
    access = clinical_reader(m.services, actor, patient_id)
    with read_recorded(m.services, actor, "chart", access, Shown.CHART, access.patient_id):
        chart = patient_chart(conn, access.patient_id, page=paging.page, page_size=paging.page_size)
    if chart is None:
        raise RecordNotFoundError(f"No patient {patient_id}.")
    return chart
